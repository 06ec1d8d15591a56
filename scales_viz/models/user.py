"""Models registered with the dashboard when its server starts.

``scales-viz serve --model SPEC`` (repeatable) or ``--config FILE`` puts the specs in
``$SCALES_VIZ_MODELS`` (a JSON list) for the dashboard, which lists them in the model picker
beside the built-ins. A spec is anything :func:`scales_viz.models.load_model` takes (see
:mod:`scales_viz.models.loading`); these come from the command line or the environment, so
``python:module:factory`` is allowed here, and only here, in the dashboard.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from scales_viz.errors import InputValueError
from scales_viz.models.base import VAEModel
from scales_viz.models.loading import (
    PAPER_PREFIX,
    PYTHON_PREFIX,
    ModelSpec,
    load_model,
    parse_spec,
)
from scales_viz.models.registry import is_builtin

__all__ = [
    "USER_MODELS_ENV",
    "Config",
    "ModelSpec",
    "load_user_model",
    "parse_spec",
    "read_config",
    "user_models",
]

USER_MODELS_ENV = "SCALES_VIZ_MODELS"


@dataclass(frozen=True)
class Config:
    """A ``serve --config`` file: model specs and, optionally, the run store's path."""

    models: list[str]
    store: str | None = None


def read_config(path: str | os.PathLike[str]) -> Config:
    """Read a config file (TOML: ``models = ["SPEC", ...]``, optional ``store = "PATH"``);
    relative paths in specs are taken from the file's folder.

    Raises:
        InputValueError: unreadable file, or fields of the wrong kind (named).
    """
    import tomllib

    file = Path(path).expanduser()
    try:
        record = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputValueError(f"{file}: not a readable TOML config ({exc}).") from exc
    models = record.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise InputValueError(f"{file}: field 'models' must be a list of model specs.")
    store = record.get("store")
    if store is not None and not isinstance(store, str):
        raise InputValueError(f"{file}: field 'store' must be a path.")
    unknown = sorted(set(record) - {"models", "store"})
    if unknown:
        raise InputValueError(f"{file}: unknown field(s) {unknown}; known: models, store.")

    def anchored(spec: str) -> str:
        if (
            spec.startswith((PAPER_PREFIX, PYTHON_PREFIX))
            or Path(spec).is_absolute()
            or is_builtin(spec)
        ):
            return spec
        return str(file.parent / spec)

    return Config(models=[anchored(m) for m in models], store=store)


def user_models() -> list[ModelSpec]:
    """The models registered in ``$SCALES_VIZ_MODELS`` (a JSON list of specs)."""
    raw = os.environ.get(USER_MODELS_ENV, "").strip()
    if not raw:
        return []
    try:
        specs = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputValueError(f"${USER_MODELS_ENV} must be a JSON list of specs: {exc}") from exc
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        raise InputValueError(f"${USER_MODELS_ENV} must be a JSON list of strings.")
    return [parse_spec(spec) for spec in specs]


def load_user_model(model: ModelSpec) -> VAEModel:
    """Load a registered model (code specs allowed: they came from the command line or the
    environment)."""
    return load_model(model, allow_code=True)
