"""Streamlit helpers shared by the dashboard's frame and views (the only UI-framework code)."""
