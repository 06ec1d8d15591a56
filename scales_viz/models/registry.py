"""The built-in models: where they live, what is there, and loading one by name.

Each built-in model is a directory ``assets/models/NAME`` written by ``scales-viz train NAME``
(see :mod:`scales_viz.models.manifest` for the files). Loading reads only safetensors and JSON.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from scales_viz.errors import InputValueError
from scales_viz.models.base import Objective, VAEModel, per_object
from scales_viz.models.codecs import ImageCodec, SequenceCodec
from scales_viz.models.expressions import fit_target, is_valid_expression
from scales_viz.models.manifest import (
    MANIFEST_FILE,
    ManifestError,
    load_manifest,
    load_module_weights,
    load_tensors,
)
from scales_viz.models.molecules import (
    CHEM_EXTRA_HINT,
    MissingExtraError,
    is_valid_smiles,
    penalized_logp,
    qed,
    rdkit_available,
    tokenize_smiles,
)
from scales_viz.paths import safe_file_name

__all__ = [
    "ASSETS_DIR",
    "DEFAULT_MODEL",
    "MODELS_DIR",
    "ModelInfo",
    "list_models",
    "load_model",
    "load_model_dir",
    "model_dir",
]

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
MODELS_DIR = ASSETS_DIR / "models"
DEFAULT_MODEL = "expressions"
#: Built-ins in the order the UI lists them.
BUILTIN_ORDER = ("expressions", "expressions-ar", "molecules", "digits-2d", "digits")
#: A decoded digit is valid when the classifier gives its top class at least this probability.
DIGIT_VALIDITY_THRESHOLD = 0.9
DIGIT_CLASSES = 10
#: The digits' stored pixel values run 0..16.
DIGIT_PIXEL_MAX = 16.0
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "characters": list,
    "smiles": tokenize_smiles,
}


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
    """The directory of built-in model `name` (``assets/models/NAME``).

    Raises:
        InputValueError: `name` is not a plain name (``..``, a slash, ...), so it could point
            outside the built-in models' folder.
    """
    if not isinstance(name, str) or safe_file_name(name) != name:
        raise InputValueError(f"{name!r} is not a built-in model name.")
    return MODELS_DIR / name


def _unavailable_reason(task: str) -> str:
    if task == "molecules" and not rdkit_available():
        return f"needs RDKit: {CHEM_EXTRA_HINT}"
    return ""


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
    reason = _unavailable_reason(manifest["task"])
    return ModelInfo(
        name=name,
        description=str(manifest.get("description", "")),
        task=manifest["task"],
        latent_dim=manifest["latent_dim"],
        likelihood=manifest["likelihood"],
        available=not reason,
        reason=reason,
    )


def load_model(name: str, path: str | Path | None = None) -> VAEModel:
    """Load built-in model `name` (see :func:`list_models`), or one of the ScaLES authors'
    released checkpoints as ``scales-paper:NAME`` from the folder `path` (see
    :mod:`scales_viz.models.paper`).

    Raises:
        InputValueError: no built-in model of that name.
        ManifestError: its files are missing, tampered or malformed.
        MissingExtraError: it needs an optional dependency that is not installed.
    """
    if name.startswith("scales-paper:"):
        from scales_viz.models.paper import load_paper_model

        return load_paper_model(name, path)
    directory = model_dir(name)
    if not (directory / MANIFEST_FILE).is_file():
        known = [info.name for info in list_models()]
        raise InputValueError(f"no built-in model {name!r}; available: {known}.")
    return load_model_dir(directory)


def load_model_dir(directory: Path) -> VAEModel:
    """Load the model in a directory written by ``scales-viz train``.

    Raises:
        ManifestError: missing, tampered or malformed files (the message names the field).
        MissingExtraError: the model's task needs an extra that is not installed.
    """
    manifest = load_manifest(directory)
    reason = _unavailable_reason(manifest["task"])
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


def codec_of(data: dict[str, Any]) -> SequenceCodec | ImageCodec:
    """The codec a validated ``data`` table describes."""
    if data["kind"] == "sequence":
        return SequenceCodec(data["vocabulary"], data["seq_len"], TOKENIZERS[data["tokenizer"]])
    return ImageCodec(data["shape"])


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


Validity = Callable[[Sequence[Any]], np.ndarray]


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
        return _digits_task(manifest, directory, decoder, codec)
    raise ManifestError(  # pragma: no cover - load_manifest validates the task
        f"{directory / MANIFEST_FILE}: task {task!r} does not fit data kind {manifest['data']}."
    )


#: Objectives on decoded strings, by name: (description, function of one object). Built-in
#: tasks, the paper's checkpoints and user manifests all take theirs from here.
SEQUENCE_OBJECTIVES: dict[str, tuple[str, Callable[[Any], float]]] = {
    "fit_target": (
        "-log(1 + min(MSE, 1000)) against 1/3 + x + sin(x*x) on [-10, 10]",
        fit_target,
    ),
    "penalized_logp": ("Crippen logP - SA score - max(largest ring - 6, 0)", penalized_logp),
    "qed": ("quantitative estimate of drug-likeness", qed),
    "length": ("length of the decoded string", lambda text: float(len(str(text)))),
}


def sequence_objectives(names: Sequence[str]) -> dict[str, Objective]:
    """The :data:`SEQUENCE_OBJECTIVES` named, as batch :class:`Objective` s."""
    return {
        name: Objective(
            name, SEQUENCE_OBJECTIVES[name][0], per_object(SEQUENCE_OBJECTIVES[name][1])
        )
        for name in names
    }


def task_rules(
    task: str, decoder: nn.Module, codec: SequenceCodec | ImageCodec
) -> tuple[Validity, dict[str, Objective]]:
    """Validity and objectives of a sequence task (``expressions`` or ``molecules``).

    Raises:
        MissingExtraError: ``molecules`` without RDKit.
        InputValueError: another task.
    """
    reason = _unavailable_reason(task)
    if reason:
        raise MissingExtraError(f"the {task} task {reason}.")
    if task == "expressions":
        return per_object(is_valid_expression), sequence_objectives(["fit_target"])
    if task == "molecules":
        return per_object(is_valid_smiles), sequence_objectives(["penalized_logp", "qed"])
    raise InputValueError(f"task_rules knows expressions and molecules; got {task!r}.")


def _digits_task(
    manifest: dict[str, Any], directory: Path, decoder: nn.Module, codec: ImageCodec
) -> tuple[Validity, dict[str, Objective]]:
    if "classifier" not in manifest:
        raise ManifestError(
            f"{directory / MANIFEST_FILE}: required field 'classifier' is missing (digits "
            "models define validity and objectives with it)."
        )
    classifier = load_module_weights(directory, manifest["classifier"], "classifier")
    chain = _CachedCopies(nn.Sequential(decoder, nn.Sigmoid(), classifier))

    def probabilities(images: Sequence[Any]) -> np.ndarray:
        """Class probabilities; NaN rows for images the decoder broke (non-finite pixels,
        as far out in latent space, where its output overflows)."""
        out = np.full((len(images), DIGIT_CLASSES), np.nan)
        if len(images) == 0:
            return out
        stack = np.stack([np.asarray(i, dtype=np.float32) for i in images])
        whole = np.isfinite(stack.reshape(len(stack), -1)).all(axis=1)
        if whole.any():
            with torch.no_grad():
                logits = classifier(codec.to_pixels(stack[whole]))
            out[whole] = torch.softmax(logits.double(), -1).numpy()
        return out

    def validity(images: Sequence[Any]) -> np.ndarray:
        # Broken images (NaN rows) count as probability 0 for every class: invalid.
        probs = np.nan_to_num(probabilities(images), nan=0.0)
        return probs.max(axis=1, initial=0.0) >= DIGIT_VALIDITY_THRESHOLD

    def looks_like(k: int) -> Objective:
        def latent(z: Tensor) -> Tensor:
            return torch.softmax(chain.like(z)(z), -1)[:, k]

        return Objective(
            f"looks_like_{k}",
            f"classifier probability that the decoded image is a {k}",
            lambda images: probabilities(images)[:, k],
            latent=latent,
        )

    return validity, {f"looks_like_{k}": looks_like(k) for k in range(DIGIT_CLASSES)}


class _CachedCopies:
    """A module and its copies on other devices/dtypes, made once each."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module.eval()
        self.copies: dict[tuple[torch.device, torch.dtype], nn.Module] = {
            (torch.device("cpu"), torch.float32): self.module
        }

    def like(self, z: Tensor) -> nn.Module:
        key = (z.device, z.dtype)
        if key not in self.copies:
            self.copies[key] = copy.deepcopy(self.module).to(device=z.device, dtype=z.dtype)
        return self.copies[key]
