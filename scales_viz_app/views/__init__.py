"""The dashboard views, one script per page (run by ``st.navigation``, not imported)."""
