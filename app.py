"""The dashboard from a checkout: ``streamlit run app.py``.

The app itself is the package ``scales_viz_app`` (``scales_viz_app/app.py``), so that it ships
in the wheel; ``make run`` and ``scales-viz serve`` run that file directly.
"""

from scales_viz_app.app import main

main()
