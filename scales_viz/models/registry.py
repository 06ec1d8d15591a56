"""The built-in models: where they live, what is there, and loading a model directory.

Each built-in model is a directory ``scales_viz/assets/models/NAME`` written by
``scales-viz train NAME`` (see :mod:`scales_viz.models.manifest` for the files), shipped in the
wheel. Loading reads only safetensors and JSON. Any model, built-in or not, is loaded by its
spec with :func:`scales_viz.models.load_model` (:mod:`scales_viz.models.loading`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from scales_viz.errors import InputValueError
from scales_viz.models.base import Objective, VAEModel
from scales_viz.models.codecs import ImageCodec, SequenceCodec
from scales_viz.models.manifest import (
    MANIFEST_FILE,
    ManifestError,
    load_manifest,
    load_module_weights,
    load_tensors,
)
from scales_viz.models.molecules import MissingExtraError
from scales_viz.models.tasks import (
    DIGIT_PIXEL_MAX,
    Validity,
    codec_of,
    digits_task,
    task_rules,
    unavailable_reason,
)
from scales_viz.paths import safe_file_name

__all__ = [
    "ASSETS_DIR",
    "DEFAULT_MODEL",
    "MODELS_DIR",
    "ModelInfo",
    "is_builtin",
    "list_models",
    "load_builtin",
    "load_model_dir",
    "model_dir",
]

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
MODELS_DIR = ASSETS_DIR / "models"
DEFAULT_MODEL = "expressions"
#: Built-ins in the order the UI lists them.
BUILTIN_ORDER = ("expressions", "expressions-ar", "molecules", "digits-2d", "digits")


@dataclass(frozen=True)
class ModelInfo:
    """What the model picker shows before loading anything."""

    name: str
    description: str
    task: str
    latent_dim: int
    likelihood: str
    available: bool
    reason: str = ""


def model_dir(name: str) -> Path:
    """The directory of built-in model `name` (``scales_viz/assets/models/NAME``).

    Raises:
        InputValueError: `name` is not a plain name (``..``, a slash, ...), so it could point
            outside the built-in models' folder.
    """
    if not isinstance(name, str) or safe_file_name(name) != name:
        raise InputValueError(f"{name!r} is not a built-in model name.")
    return MODELS_DIR / name


def list_models() -> list[ModelInfo]:
    """The built-in models with their availability (RDKit missing makes molecules unavailable).

    A directory whose manifest is broken is listed as unavailable with the error.
    """
    names = sorted(
        (p.parent.name for p in MODELS_DIR.glob(f"*/{MANIFEST_FILE}")),
        key=lambda n: (BUILTIN_ORDER.index(n) if n in BUILTIN_ORDER else len(BUILTIN_ORDER), n),
    )
    return [_info(name) for name in names]


def _info(name: str) -> ModelInfo:
    try:
        manifest = load_manifest(model_dir(name))
    except ManifestError as exc:
        return ModelInfo(name, "", "", 0, "", available=False, reason=str(exc))
    reason = unavailable_reason(manifest["task"])
    return ModelInfo(
        name=name,
        description=str(manifest.get("description", "")),
        task=manifest["task"],
        latent_dim=manifest["latent_dim"],
        likelihood=manifest["likelihood"],
        available=not reason,
        reason=reason,
    )


def load_builtin(name: str) -> VAEModel:
    """Load built-in model `name` (see :func:`list_models`): a name, never a path.

    Raises:
        InputValueError: no built-in model of that name.
        ManifestError: its files are missing, tampered or malformed.
        MissingExtraError: it needs an optional dependency that is not installed.
    """
    directory = model_dir(name)
    if not (directory / MANIFEST_FILE).is_file():
        known = [info.name for info in list_models()]
        raise InputValueError(f"no built-in model {name!r}; available: {known}.")
    return load_model_dir(directory)


def is_builtin(name: str) -> bool:
    """Whether `name` names a built-in model (without raising on other strings)."""
    try:
        return (model_dir(name) / MANIFEST_FILE).is_file()
    except InputValueError:
        return False


def load_model_dir(directory: Path) -> VAEModel:
    """Load the model in a directory written by ``scales-viz train``.

    Raises:
        ManifestError: missing, tampered or malformed files (the message names the field).
        MissingExtraError: the model's task needs an extra that is not installed.
    """
    manifest = load_manifest(directory)
    reason = unavailable_reason(manifest["task"])
    if reason:
        raise MissingExtraError(f"model {manifest['name']!r} {reason}.")
    decoder = load_module_weights(directory, manifest["decoder"], "decoder")
    encoder = load_module_weights(directory, manifest["encoder"], "encoder")
    reference = manifest["reference"]
    tensors = load_tensors(directory, reference["file"], reference["sha256"], "reference")
    latents = _reference_tensor(tensors, "latents", directory)
    if latents.ndim != 2 or latents.shape[1] != manifest["latent_dim"]:
        raise ManifestError(
            f"{Path(directory) / reference['file']}: tensor 'latents' has shape "
            f"{tuple(latents.shape)}; manifest field 'latent_dim' says d={manifest['latent_dim']}."
        )
    codec = codec_of(manifest["data"])
    _check_decoder_output(decoder, manifest, codec, directory)
    objects = _reference_objects(tensors, codec, latents.shape[0], directory)
    validity, objectives = _task(manifest, Path(directory), decoder, codec)
    return VAEModel(
        name=manifest["name"],
        decoder=decoder,
        encoder=encoder,
        codec=codec,
        validity=validity,
        objectives=objectives,
        render=manifest["render"],
        prior_scale=float(manifest["prior_scale"]),
        data_latents=latents,
        data_objects=objects,
        manifest=manifest,
        directory=Path(directory),
    )


def _reference_objects(
    tensors: dict[str, Tensor], codec: SequenceCodec | ImageCodec, count: int, directory: Path
) -> list[Any]:
    """The data objects behind the reference latents (token strings or images)."""
    if isinstance(codec, SequenceCodec):
        key, expected = "tokens", (count, codec.seq_len)
    else:
        key, expected = "pixels", (count, codec.pixels)
    values = _reference_tensor(tensors, key, directory)
    if tuple(values.shape) != expected:
        raise ManifestError(
            f"{directory}: reference tensor '{key}' has shape {tuple(values.shape)}; "
            f"the manifest implies {expected}."
        )
    if isinstance(codec, SequenceCodec):
        if values.numel() and int(values.max()) >= codec.vocab_size:
            raise ManifestError(
                f"{directory}: reference tensor 'tokens' holds an index outside the "
                f"vocabulary of {codec.vocab_size}."
            )
        return codec.to_texts(values)
    return codec.to_images(values.float() / DIGIT_PIXEL_MAX)


def _reference_tensor(tensors: dict[str, Tensor], key: str, directory: Path) -> Tensor:
    if key not in tensors:
        raise ManifestError(
            f"{directory}: the reference file has no tensor '{key}'; it has {sorted(tensors)}."
        )
    return tensors[key]


def _check_decoder_output(
    decoder: nn.Module, manifest: dict[str, Any], codec: SequenceCodec | ImageCodec, where: Path
) -> None:
    with torch.no_grad():
        out = decoder(torch.zeros(1, manifest["latent_dim"]))
    if isinstance(codec, SequenceCodec):
        expected: tuple[int, ...] = (1, codec.seq_len, codec.vocab_size)
    else:
        expected = (1, codec.pixels)
    if tuple(out.shape) != expected:
        raise ManifestError(
            f"{where}: the decoder gives logits of shape {tuple(out.shape)[1:]} per point; "
            f"manifest field 'data' implies {expected[1:]}."
        )


def _task(
    manifest: dict[str, Any],
    directory: Path,
    decoder: nn.Module,
    codec: SequenceCodec | ImageCodec,
) -> tuple[Validity, dict[str, Objective]]:
    """The validity rule and objectives of the manifest's task."""
    task = manifest["task"]
    if task in ("expressions", "molecules"):
        return task_rules(task, decoder, codec)
    if task == "digits" and isinstance(codec, ImageCodec):
        return digits_task(manifest, directory, decoder, codec)
    raise ManifestError(  # pragma: no cover - load_manifest validates the task
        f"{directory / MANIFEST_FILE}: task {task!r} does not fit data kind {manifest['data']}."
    )
