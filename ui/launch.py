"""Start the dashboard with its heavy imports and the default model already loaded.

``python -m ui.launch [streamlit options]`` (what ``make run`` and ``scales-viz serve`` use)
imports torch, the views' libraries and the default model *before* Streamlit's server starts,
in the same process, so the first page a user opens does not pay for them (about 3 s on a
2-core CPU). Streamlit runs the app's scripts in this process, so the warm modules and the
preloaded model (``ui.state.PRELOADED``) are what the views find.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"


def warm() -> None:
    """Import what the views import and load the default model."""
    import plotly.graph_objects  # noqa: F401
    import sklearn.base  # noqa: F401

    import scales_viz.figures.projection
    import scales_viz.figures.runs
    import scales_viz.figures.slices
    import scales_viz.projection
    import scales_viz.selection  # noqa: F401
    from scales_viz.models import DEFAULT_MODEL, load_model
    from ui.state import PRELOADED

    PRELOADED[DEFAULT_MODEL] = load_model(DEFAULT_MODEL)


def main(argv: list[str] | None = None) -> None:
    """Warm up, then run ``streamlit run app.py`` with `argv` as its options."""
    warm()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
