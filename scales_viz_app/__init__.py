"""The scales-viz dashboard (Streamlit): the frame in ``app.py``, the views in ``views/`` and
their Streamlit helpers in ``ui/``.

It is a package of its own, beside the library, so that ``scales_viz`` never imports
Streamlit, and it ships in the same wheel, so that ``scales-viz serve`` works after
``pip install scales-viz`` from any folder.
"""
