"""Models users bring, registered by *spec* from the command line or the environment.

``scales-viz serve --model SPEC`` (repeatable) puts the specs in ``$SCALES_VIZ_MODELS`` (a JSON
list) for the dashboard, which lists them in the model picker beside the built-ins. A spec is
one of:

``scales-paper:NAME`` or ``scales-paper:NAME=FOLDER``
    One of the ScaLES authors' released checkpoints (:mod:`scales_viz.models.paper`), from
    ``FOLDER`` or ``$SCALES_PAPER_DIR``.
``PATH/model.toml`` or ``PATH/model.json``
    A user manifest (:mod:`scales_viz.models.user_manifest`): safetensors weights for one of
    the configurable architectures (or a ``torch.export`` program), data layout, validity
    rule, objectives.
``DIRECTORY``
    A model directory in scales-viz's own format (``manifest.json``, safetensors weights with
    checksums, ``reference.safetensors``), as ``scales-viz train --out DIRECTORY`` writes it.
``python:package.module:factory``
    A Python callable returning a :class:`~scales_viz.models.VAEModel`. This runs code, so it
    is accepted from the command line or the environment only, never from the web page.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scales_viz.errors import InputValueError
from scales_viz.models.base import VAEModel

__all__ = [
    "USER_MODELS_ENV",
    "Config",
    "UserModel",
    "load_user_model",
    "parse_spec",
    "read_config",
    "user_models",
]

USER_MODELS_ENV = "SCALES_VIZ_MODELS"
PAPER_PREFIX = "scales-paper:"
PYTHON_PREFIX = "python:"


@dataclass(frozen=True)
class UserModel:
    """A registered model: the name shown in the picker and how to load it."""

    name: str
    kind: str  # "paper", "manifest", "directory" or "python"
    target: str
    path: str | None = None


def parse_spec(spec: str) -> UserModel:
    """A spec (see the module docstring) as a :class:`UserModel`, or a clear error."""
    spec = spec.strip()
    if spec.startswith(PAPER_PREFIX):
        name, _, folder = spec.partition("=")
        return UserModel(name=name, kind="paper", target=name, path=folder or None)
    if spec.startswith(PYTHON_PREFIX):
        target = spec[len(PYTHON_PREFIX) :]
        module, _, attribute = target.rpartition(":")
        if not module or not attribute.isidentifier():
            raise InputValueError(f"model spec {spec!r}: write python:package.module:factory.")
        return UserModel(name=attribute, kind="python", target=target)
    directory = Path(spec).expanduser()
    if directory.suffix in (".toml", ".json") and directory.is_file():
        return UserModel(
            name=_manifest_name(directory), kind="manifest", target=str(directory.resolve())
        )
    if (directory / "manifest.json").is_file():
        return UserModel(name=directory.name, kind="directory", target=str(directory.resolve()))
    raise InputValueError(
        f"model spec {spec!r} is neither scales-paper:NAME, python:module:factory, a manifest "
        "file (.toml or .json) nor a model directory with a manifest.json."
    )


def _manifest_name(path: Path) -> str:
    """The ``name`` a manifest file declares (its file stem if it cannot be read)."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
        record = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        name = record.get("name") if isinstance(record, dict) else None
    except (OSError, UnicodeDecodeError, ValueError):
        name = None
    return name if isinstance(name, str) and name else path.stem


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
        if spec.startswith((PAPER_PREFIX, PYTHON_PREFIX)) or Path(spec).is_absolute():
            return spec
        return str(file.parent / spec)

    return Config(models=[anchored(m) for m in models], store=store)


def user_models() -> list[UserModel]:
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


def load_user_model(model: UserModel) -> VAEModel:
    """Load a registered model.

    Raises:
        InputValueError, ManifestError, MissingExtraError: as the loaders raise them; a Python
            factory that does not return a VAEModel.
    """
    from scales_viz.models.registry import load_model_dir

    if model.kind == "paper":
        from scales_viz.models.paper import load_paper_model

        return load_paper_model(model.target, model.path)
    if model.kind == "directory":
        return load_model_dir(Path(model.target))
    if model.kind == "manifest":
        from scales_viz.models.user_manifest import load_user_manifest

        return load_user_manifest(model.target)
    module_name, _, attribute = model.target.rpartition(":")
    factory: Any = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(factory):
        raise InputValueError(f"{model.target}: no callable {attribute!r} in {module_name}.")
    built = factory()
    if not isinstance(built, VAEModel):
        raise InputValueError(
            f"{model.target} returned {type(built).__name__}; a scales_viz.models.VAEModel "
            "was expected."
        )
    return built
