"""The dashboard's views as Streamlit pages: one table for the navigation and every link.

Links and page switches take these page objects, never paths: a path like ``views/learn.py``
is resolved against the entry script's folder, which is the package when the app is served
(``make run``, ``scales-viz serve``) but the checkout's root under ``streamlit run app.py``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage

VIEWS = Path(__file__).resolve().parents[1] / "views"
#: url path (and file name in views/) -> title, in the navigation's order.
TITLES = {
    "home": "Start here",
    "model": "Model",
    "slices": "Slices",
    "projection": "Projection",
    "optimizers": "Optimisers",
    "inspect": "Inspect",
    "learn": "Learn",
}


def page(name: str) -> StreamlitPage:
    """The page of view `name` (a key of :data:`TITLES`)."""
    return st.Page(VIEWS / f"{name}.py", title=TITLES[name], url_path=name, default=name == "home")


def pages() -> list[StreamlitPage]:
    return [page(name) for name in TITLES]
