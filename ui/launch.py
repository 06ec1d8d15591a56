"""Start the dashboard with its heavy imports and the default model already loaded.

``python -m ui.launch [streamlit options]`` (what ``make run`` and ``scales-viz serve`` use)
imports torch, the views' libraries and the default model *before* Streamlit's server starts,
in the same process, so the first page a user opens does not pay for them (about 3 s on a
2-core CPU). Streamlit runs the app's scripts in this process, so the warm modules and the
preloaded model (``ui.state.PRELOADED``) are what the views find.

Then it freezes what is alive after the warm-up out of the garbage collector's way
(:func:`settle`). Streamlit runs a full collection after every script run
(``runner.postScriptGC``), and with torch, numba, scikit-learn and Plotly loaded that walks
about 300,000 objects: 0.14 s holding the GIL on an idle 2-core machine, up to 0.4 s while a
browser is loading the page, which stalled the server's event loop (Plotly's script and the
page's messages) on every rerun. Frozen, that heap is no longer walked (the collection takes
under a millisecond right after start); what the script runs leave behind is still collected.
"""

from __future__ import annotations

import gc
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


def settle() -> None:
    """Collect once, then move every object alive now into the collector's permanent
    generation (``gc.freeze``), so later collections do not walk the warm-up's heap."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    """Warm up, settle, then run ``streamlit run app.py`` with `argv` as its options."""
    warm()
    settle()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
