"""Session-state keys, cached model loading and the device choice.

Session-state keys (one place, documented):

- ``model_name``: the built-in model picked in the sidebar.
- ``device_choice``: "auto", "cpu" or "cuda" (auto = CUDA when available).
- ``slice_selection``: what was picked on the Slices page: ``{"owner": (model, grid key),
  "cells": [(row, col), ...]}``, or ``"points": True`` when run or data points were picked
  (their latents are in ``selection``). A pick made on another model or grid is ignored.
- ``trajectories``: runs to overlay on slices, a list of dicts (``name``; ``model``, the model
  the run belongs to; ``z``, the `n x d` latents in step order as lists; ``best``, the index
  of the best valid point or None; per point ``step``, ``objective``, ``valid``,
  ``scales``); the Optimisers view writes it (``views.optimizers.trajectory``).
- ``opt_selected_runs``: ids of the runs picked for comparison on the Optimisers view.
- ``selection``: the linked selection (:class:`scales_viz.selection.Selection` as plain
  data, plus ``indices`` into the projection map when it was made there); written by
  Slices, Projection and Optimisers, read by Inspect. Use :func:`get_selection` and
  :func:`set_selection`.
"""

from __future__ import annotations

import streamlit as st
import torch

from scales_viz.cluster import RAY_ENV, Cluster
from scales_viz.errors import ScalesVizError
from scales_viz.lso.store import RunStore
from scales_viz.models import DEFAULT_MODEL, ModelInfo, ModelSpec, VAEModel, list_models
from scales_viz.models.registry import load_builtin
from scales_viz.models.user import load_user_model, user_models
from scales_viz.selection import Selection

MODEL_KEY = "model_name"
DEVICE_KEY = "device_choice"
SLICE_SELECTION_KEY = "slice_selection"
TRAJECTORIES_KEY = "trajectories"
SELECTION_KEY = "selection"


#: Models loaded before the server started (``scales_viz_app.ui.launch``), by name.
PRELOADED: dict[str, VAEModel] = {}


@st.cache_resource(show_spinner="Loading model...")
def get_model(name: str) -> VAEModel:
    """Model `name` (built-in or registered with ``serve --model``), loaded once per process."""
    if name in PRELOADED:
        return PRELOADED[name]
    registered = {m.name: m for m in _registered() if m.kind != "builtin"}
    if name in registered:
        model = load_user_model(registered[name])
        # The picker's name is the model's name in the app (runs, caches and selections are
        # keyed by it), even where a factory or manifest calls the model something else.
        model.name = name
        return model
    # A name picked in the page loads a built-in only: never a path or code.
    return load_builtin(name)


def _registered() -> list[ModelSpec]:
    try:
        return user_models()
    except ScalesVizError as exc:
        st.error(f"Registered models are ignored: {exc}")
        return []


def model_infos() -> list[ModelInfo]:
    """The model picker's entries: the built-ins, then the models registered at start."""
    import os

    from scales_viz.models.user import USER_MODELS_ENV

    return _model_infos(os.environ.get(USER_MODELS_ENV, ""))


@st.cache_data(show_spinner=False)
def _model_infos(registered: str) -> list[ModelInfo]:
    """`model_infos` for one value of the registration variable (the cache key)."""
    infos = list_models()
    for model in _registered():
        if model.kind == "builtin":  # listed already
            continue
        infos.append(
            ModelInfo(
                name=model.name,
                description=f"registered model ({model.kind}: {model.target})",
                task="",
                latent_dim=0,
                likelihood="",
                available=True,
            )
        )
    return infos


@st.cache_resource(show_spinner="Starting the model's workers on the Ray cluster...")
def _cluster(name: str, address: str) -> Cluster:
    registered = {m.name: m for m in _registered() if m.kind != "builtin"}
    if name in registered:  # registered on the command line, which may run code
        return Cluster(address, registered[name], allow_code=True)
    return Cluster(address, name)


def get_cluster(name: str) -> Cluster | None:
    """The Ray actors holding model `name` when the server was started with ``--ray``
    (``SCALES_VIZ_RAY``); None without it, or after showing why the cluster is not used."""
    import os

    address = os.environ.get(RAY_ENV, "")
    if not address:
        return None
    try:
        return _cluster(name, address)
    except Exception as exc:  # Ray missing, unreachable, or the model cannot load there
        st.warning(f"Computing here, not on the Ray cluster at {address}: {exc}")
        return None


@st.cache_resource(show_spinner=False)
def _store(path: str | None) -> RunStore:
    return RunStore(path)


def get_store() -> RunStore | None:
    """The run store (``SCALES_VIZ_STORE`` or the default path), or None after an error."""
    import os

    from scales_viz.lso.store import STORE_ENV

    try:
        return _store(os.environ.get(STORE_ENV) or None)
    except ScalesVizError as exc:
        st.error(f"The run store cannot be opened: {exc}")
        return None


def device() -> torch.device:
    """The device chosen in the sidebar (auto: CUDA when available, else CPU)."""
    choice = st.session_state.get(DEVICE_KEY, "auto")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device("cpu")


def current_model() -> VAEModel | None:
    """The model picked in the sidebar, or None after showing why it cannot load."""
    name = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    info = {i.name: i for i in model_infos()}.get(name)
    if info is not None and not info.available:
        st.error(f"Model '{name}' is unavailable: {info.reason}")
        return None
    try:
        return get_model(name)
    except ScalesVizError as exc:
        st.error(f"Model '{name}' could not be loaded: {exc}")
        return None


def set_selection(selection: Selection, indices: list[int] | None = None) -> None:
    """Make `selection` the linked selection (`indices`: map points, for Projection)."""
    state = selection.to_state()
    state["indices"] = None if indices is None else [int(i) for i in indices]
    st.session_state[SELECTION_KEY] = state


def get_selection(model_name: str) -> tuple[Selection, list[int] | None] | None:
    """The linked selection and its map indices, if there is one for this model."""
    state = st.session_state.get(SELECTION_KEY)
    if not state or state.get("model") != model_name:
        return None
    try:
        return Selection.from_state(state), state.get("indices")
    except ScalesVizError:
        st.session_state.pop(SELECTION_KEY, None)
        return None
