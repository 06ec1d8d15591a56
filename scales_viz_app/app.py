"""scales-viz dashboard: the frame (navigation, model picker, device) around the views.

Run with ``make run`` or ``scales-viz serve`` (both start ``streamlit run`` on this file,
installed or in a checkout), or ``streamlit run app.py`` in a checkout. The views live in
``views/`` rather than ``pages/``: Streamlit treats a ``pages/`` folder next to the entry
script as the legacy multipage app, which AppTest then runs instead of this entry point
(design.md).
"""

from __future__ import annotations

import logging

import streamlit as st
import torch
from streamlit.navigation.page import StreamlitPage

from scales_viz import __version__
from scales_viz.models import DEFAULT_MODEL
from scales_viz_app.ui.pages import pages
from scales_viz_app.ui.state import DEVICE_KEY, MODEL_KEY, device, model_infos

LOG = logging.getLogger("scales_viz.app")


def sidebar() -> None:
    """Model picker, device and version."""
    infos = model_infos()
    names = [info.name for info in infos]
    by_name = {info.name: info for info in infos}
    if st.session_state.get(MODEL_KEY) not in names:
        st.session_state[MODEL_KEY] = DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]
    with st.sidebar:
        st.selectbox(
            "Model",
            names,
            key=MODEL_KEY,
            format_func=lambda n: n if by_name[n].available else f"{n} (unavailable)",
            help="Built-in models ship with the package (scales_viz/assets/models).",
        )
        chosen = by_name[st.session_state[MODEL_KEY]]
        if chosen.available:
            dim = f" d={chosen.latent_dim}." if chosen.latent_dim else ""
            st.caption(f"{chosen.description}{dim}")
        else:
            st.warning(chosen.reason)
        options = ["auto", "cpu", *(["cuda"] if torch.cuda.is_available() else [])]
        st.selectbox("Device", options, key=DEVICE_KEY, help="auto: CUDA when available")
        st.caption(f"Computing on **{device().type}** - scales-viz {__version__}")


def main() -> None:
    """Configure the page, draw the sidebar, run the chosen view."""
    st.set_page_config(page_title="scales-viz", layout="wide")
    navigation = st.navigation(pages())
    sidebar()
    run_view(navigation)


def run_view(navigation: StreamlitPage) -> None:
    """Run the chosen view; an unexpected error becomes a message on that view only.

    A model that raises inside its decoder, say, stops the view it broke with a readable
    error (the traceback goes to the server log), while the sidebar and the other views keep
    working. Streamlit's own control flow (``st.rerun``, ``st.stop``) is not an ``Exception``
    and passes through.
    """
    try:
        navigation.run()
    except Exception as exc:
        LOG.exception("view %s failed", navigation.title)
        model = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
        st.error(
            f"**{navigation.title}** stopped on an error with model '{model}': "
            f"{type(exc).__name__}: {exc}\n\nThe other views and models keep working; the "
            "traceback is in the server log."
        )


# Streamlit runs this file as the script ``__main__``; the checkout's top-level app.py imports
# it and calls main() on every run.
if __name__ == "__main__":
    main()
