"""One way to name a model, everywhere: a *spec*, loaded by :func:`load_model`.

A spec is one of:

``NAME``
    A built-in model (``scales_viz/assets/models/NAME``, see :func:`list_models`).
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
    is loaded only with ``allow_code=True``: what the command line and the environment pass,
    never a name picked in the web page.

Every command (``serve``, ``optimize``, ``map``, ``evaluate``, ``runs import``, ``score``)
takes any spec; the dashboard lists the built-ins and the specs registered when the server
started (:mod:`scales_viz.models.user`).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scales_viz.errors import InputValueError
from scales_viz.models.base import VAEModel
from scales_viz.models.registry import is_builtin, load_builtin, load_model_dir, model_dir

__all__ = ["PAPER_PREFIX", "PYTHON_PREFIX", "ModelSpec", "load_model", "parse_spec"]

PAPER_PREFIX = "scales-paper:"
PYTHON_PREFIX = "python:"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: the name the model goes by and how to load it.

    Attributes:
        name: the name shown in the model picker and stored with runs.
        kind: "builtin", "paper", "manifest", "directory" or "python".
        target: the built-in name, the checkpoint name, a resolved path or ``module:factory``.
        path: the checkpoints' folder (``scales-paper:NAME=FOLDER``), if given.
    """

    name: str
    kind: str
    target: str
    path: str | None = None

    @property
    def runs_code(self) -> bool:
        """Whether loading it runs the user's Python code."""
        return self.kind == "python"

    @property
    def directory(self) -> Path | None:
        """Where its files (card, map) are written by default: built-ins and model
        directories; None for the rest."""
        if self.kind == "builtin":
            return model_dir(self.target)
        if self.kind == "directory":
            return Path(self.target)
        return None


def parse_spec(spec: str) -> ModelSpec:
    """A spec (see the module docstring) as a :class:`ModelSpec`, or a clear error.

    A bare name is a built-in when one exists; anything else is read as a path.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputValueError(f"a model spec must be a non-empty string; got {spec!r}.")
    spec = spec.strip()
    if spec.startswith(PAPER_PREFIX):
        name, _, folder = spec.partition("=")
        return ModelSpec(name=name, kind="paper", target=name, path=folder or None)
    if spec.startswith(PYTHON_PREFIX):
        target = spec[len(PYTHON_PREFIX) :]
        module, _, attribute = target.rpartition(":")
        if not module or not attribute.isidentifier():
            raise InputValueError(f"model spec {spec!r}: write python:package.module:factory.")
        return ModelSpec(name=attribute, kind="python", target=target)
    if is_builtin(spec):
        return ModelSpec(name=spec, kind="builtin", target=spec)
    path = Path(spec).expanduser()
    if path.suffix in (".toml", ".json") and path.is_file():
        return ModelSpec(name=_manifest_name(path), kind="manifest", target=str(path.resolve()))
    if (path / "manifest.json").is_file():
        return ModelSpec(name=path.name, kind="directory", target=str(path.resolve()))
    from scales_viz.models.registry import list_models

    builtins = [info.name for info in list_models()]
    raise InputValueError(
        f"model spec {spec!r} is neither a built-in model ({', '.join(builtins)}), "
        "scales-paper:NAME, python:module:factory, a manifest file (.toml or .json) nor a "
        "model directory with a manifest.json."
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


def load_model(
    spec: str | ModelSpec, path: str | Path | None = None, *, allow_code: bool = False
) -> VAEModel:
    """Load the model a spec names (see the module docstring).

    Args:
        spec: a spec string or a parsed :class:`ModelSpec`.
        path: the checkpoints' folder for ``scales-paper:NAME`` (the spec's ``=FOLDER`` wins).
        allow_code: accept ``python:module:factory`` (runs code). Only the command line and
            the environment pass True; the web page never does.

    Raises:
        InputValueError: an unknown or malformed spec; a code spec without `allow_code`; a
            factory that does not return a VAEModel.
        ManifestError: the model's files are missing, tampered or malformed.
        MissingExtraError: it needs an optional dependency that is not installed.
    """
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    if parsed.kind == "builtin":
        return load_builtin(parsed.target)
    if parsed.kind == "paper":
        from scales_viz.models.paper import load_paper_model

        return load_paper_model(parsed.target, parsed.path or path)
    if parsed.kind == "directory":
        return load_model_dir(Path(parsed.target))
    if parsed.kind == "manifest":
        from scales_viz.models.user_manifest import load_user_manifest

        return load_user_manifest(parsed.target)
    if not allow_code:
        raise InputValueError(
            f"model spec python:{parsed.target} runs Python code; it is accepted from the "
            "command line or the environment only (allow_code=True), never from the page."
        )
    module_name, _, attribute = parsed.target.rpartition(":")
    factory: Any = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(factory):
        raise InputValueError(f"{parsed.target}: no callable {attribute!r} in {module_name}.")
    built = factory()
    if not isinstance(built, VAEModel):
        raise InputValueError(
            f"{parsed.target} returned {type(built).__name__}; a scales_viz.models.VAEModel "
            "was expected."
        )
    return built
