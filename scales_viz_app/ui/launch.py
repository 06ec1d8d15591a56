"""Start the dashboard with its heavy imports and the default model already loaded.

``python -m scales_viz_app.ui.launch [streamlit options]`` (what ``make run`` and
``scales-viz serve`` use) imports torch, the views' libraries and the default model *before*
Streamlit's server starts, in the same process, so the first page a user opens does not pay for
them (about 3 s on a 2-core CPU). Streamlit runs the app's scripts in this process, so the warm
modules and the preloaded model (``ui.state.PRELOADED``) are what the views find.

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
from collections.abc import Sequence
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"
#: The server and client settings (``.streamlit/config.toml`` in a checkout links to it).
#: Streamlit reads a config file only from the working directory and the home folder, so an
#: installed dashboard started from any folder gets them as command-line flags.
CONFIG = Path(__file__).resolve().parents[1] / "config.toml"


def warm() -> None:
    """Import what the views import and load the default model."""
    import plotly.graph_objects  # noqa: F401
    import sklearn.base  # noqa: F401

    import scales_viz.figures.projection
    import scales_viz.figures.runs
    import scales_viz.figures.slices
    import scales_viz.projection
    import scales_viz.selection  # noqa: F401
    from scales_viz.models import DEFAULT_MODEL, load_builtin
    from scales_viz_app.ui.state import PRELOADED

    PRELOADED[DEFAULT_MODEL] = load_builtin(DEFAULT_MODEL)


def settle() -> None:
    """Collect once, then move every object alive now into the collector's permanent
    generation (``gc.freeze``), so later collections do not walk the warm-up's heap."""
    gc.collect()
    gc.freeze()


def config_flags(given: Sequence[str] = ()) -> list[str]:
    """The settings of :data:`CONFIG` as ``--section.option value`` flags, leaving out the
    options that `given` (the caller's own flags) sets, and lists (only the file watcher's
    folder list, which matters in a checkout, where Streamlit reads the file itself)."""
    import tomllib

    settings = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    named = {arg.split("=", 1)[0] for arg in given if arg.startswith("--")}
    flags: list[str] = []
    for section, options in settings.items():
        for option, value in options.items():
            flag = f"--{section}.{option}"
            if flag in named or isinstance(value, list):
                continue
            if isinstance(value, bool):
                value = str(value).lower()
            flags += [flag, str(value)]
    return flags


def main(argv: list[str] | None = None) -> None:
    """Warm up, settle, then run ``streamlit run app.py`` with the packaged settings and
    `argv` (which wins over them) as its options."""
    warm()
    settle()
    from streamlit.web import cli

    given = sys.argv[1:] if argv is None else argv
    sys.argv = ["streamlit", "run", str(APP), *given, *config_flags(given)]
    cli.main()


if __name__ == "__main__":
    main()
