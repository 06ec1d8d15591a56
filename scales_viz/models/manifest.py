"""Model manifests: a JSON description of a model directory, validated field by field.

A model directory holds ``manifest.json`` and safetensors files it names, each with its
SHA-256. Nothing here unpickles: weights load through safetensors, and a file whose checksum
differs from the manifest's is refused as tampered. Every error names the file and the field.

Schema (format version 1)::

    format            "scales-viz-model"
    format_version    1
    name              model name (letters, digits, "-", "_", ":")
    task              "expressions" | "molecules" | "digits" (validity and objectives)
    description       one line
    latent_dim        d >= 1
    prior_scale       std of the Gaussian prior the model was trained with (> 0)
    likelihood        "categorical" | "bernoulli"
    render            "text" | "molecule" | "image"
    data              {"kind": "sequence", "vocabulary": [...], "seq_len": L,
                       "tokenizer": "characters" | "smiles"}
                      or {"kind": "image", "shape": [H, W]}
    decoder, encoder  {"architecture": name, "params": {...}, "file": "x.safetensors",
                       "sha256": hex}; classifier likewise, optional
    reference         {"file": ..., "sha256": ..., "count": n}: encoded data latents
    dataset, training, metrics   free-form records (descriptions, settings, measurements)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from scales_viz.errors import InputValueError
from scales_viz.models.decoders import (
    BernoulliConvDecoder,
    BernoulliMLPDecoder,
    MLPDecoder,
    SoftmaxFeedbackRNNDecoder,
    SoftmaxInputRNNDecoder,
    TransformerLatentDecoder,
)
from scales_viz.models.encoders import (
    ConvImageEncoder,
    ConvSequenceEncoder,
    GRUSequenceEncoder,
    MLPEncoder,
)

__all__ = [
    "ARCHITECTURES",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "ManifestError",
    "ModuleSpec",
    "build_module",
    "load_manifest",
    "load_module_weights",
    "load_tensors",
    "module_record",
    "save_tensors",
    "sha256_of",
]

FORMAT = "scales-viz-model"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
#: Largest size any architecture parameter may ask for (guards against absurd manifests).
MAX_SIZE = 1 << 16
#: Largest manifest read, in bytes.
MAX_MANIFEST_BYTES = 1 << 20
#: Most parameters a manifest may ask one module to have (200 MB of float32).
MAX_PARAMETERS = 50_000_000
#: Most outputs per latent point: sequence length x vocabulary, or pixels.
MAX_OUTPUTS = 1 << 22
TASKS = ("expressions", "molecules", "digits")
LIKELIHOODS = ("categorical", "bernoulli")
RENDERS = ("text", "molecule", "image")
TOKENIZERS = ("characters", "smiles")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(InputValueError):
    """A manifest or a file it names is missing, malformed, or does not match."""


class MLPClassifier(nn.Module):
    """MLP from `n x P` inputs to `n x K` class logits (two SiLU hidden layers)."""

    def __init__(self, inputs: int, classes: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(inputs, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """`x`: `n x P` -> logits `n x K`."""
        return self.net(x)


#: Architectures a manifest may name, and the module class each builds.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "softmax_feedback_rnn": SoftmaxFeedbackRNNDecoder,
    "softmax_input_rnn": SoftmaxInputRNNDecoder,
    "mlp_sequence": MLPDecoder,
    "transformer_sequence": TransformerLatentDecoder,
    "bernoulli_mlp": BernoulliMLPDecoder,
    "bernoulli_conv": BernoulliConvDecoder,
    "conv_sequence_encoder": ConvSequenceEncoder,
    "conv_image_encoder": ConvImageEncoder,
    "gru_sequence_encoder": GRUSequenceEncoder,
    "mlp_encoder": MLPEncoder,
    "mlp_classifier": MLPClassifier,
}


@dataclass(frozen=True)
class ModuleSpec:
    """One weights file of a model: its architecture, constructor parameters and checksum."""

    architecture: str
    params: Mapping[str, Any]
    file: str
    sha256: str


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fail(path: Path, field: str, expected: str, got: object) -> ManifestError:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ManifestError(f"{path}: field '{field}' must be {expected}; got {shown}.")


def _get(record: Mapping[str, Any], key: str, path: Path, prefix: str = "") -> Any:
    if key not in record:
        raise ManifestError(f"{path}: required field '{prefix}{key}' is missing.")
    return record[key]


def _int(record: Mapping[str, Any], key: str, path: Path, prefix: str = "") -> int:
    value = _get(record, key, path, prefix)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
        raise _fail(path, prefix + key, f"an integer from 1 to {MAX_SIZE}", value)
    return value


def _choice(
    record: Mapping[str, Any], key: str, choices: tuple[str, ...], path: Path, prefix: str = ""
) -> str:
    value = _get(record, key, path, prefix)
    if value not in choices:
        raise _fail(path, prefix + key, f"one of {list(choices)}", value)
    return str(value)


def _check_params(params: object, path: Path, field: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise _fail(path, field, "an object of constructor parameters", params)
    for key, value in params.items():
        where = f"{field}.{key}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int) and not 0 <= value <= MAX_SIZE:
            raise _fail(path, where, f"an integer from 0 to {MAX_SIZE}", value)
        if isinstance(value, float) and not 0.0 <= value <= 1.0:
            raise _fail(path, where, "a number from 0 to 1", value)
        if isinstance(value, list) and not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIZE for v in value
        ):
            raise _fail(path, where, f"a list of integers from 1 to {MAX_SIZE}", value)
        if not isinstance(value, int | float | str | list):
            raise _fail(path, where, "a number, string or list of integers", value)
    return dict(params)


def _module_spec(record: Mapping[str, Any], key: str, path: Path) -> ModuleSpec:
    spec = _get(record, key, path)
    if not isinstance(spec, dict):
        raise _fail(path, key, "an object", spec)
    architecture = _choice(spec, "architecture", tuple(ARCHITECTURES), path, f"{key}.")
    params = _check_params(_get(spec, "params", path, f"{key}."), path, f"{key}.params")
    return ModuleSpec(architecture, params, _file(spec, path, key), _sha(spec, path, key))


def _file(spec: Mapping[str, Any], path: Path, key: str) -> str:
    name = _get(spec, "file", path, f"{key}.")
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".safetensors"):
        raise _fail(path, f"{key}.file", "a .safetensors file name in the model directory", name)
    return name


def _sha(spec: Mapping[str, Any], path: Path, key: str) -> str:
    digest = _get(spec, "sha256", path, f"{key}.")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise _fail(path, f"{key}.sha256", "64 lowercase hex digits", digest)
    return digest


def check_data(data: object, path: Path) -> dict[str, Any]:
    """Validate a manifest's ``data`` table (sequence vocabulary and length, or image shape)."""
    if not isinstance(data, dict):
        raise _fail(path, "data", "an object", data)
    kind = _choice(data, "kind", ("sequence", "image"), path, "data.")
    if kind == "sequence":
        vocab = _get(data, "vocabulary", path, "data.")
        if (
            not isinstance(vocab, list)
            or len(vocab) < 2
            or len(vocab) > MAX_SIZE
            or not all(isinstance(t, str) and t for t in vocab)
            or len(set(vocab)) != len(vocab)
        ):
            raise _fail(path, "data.vocabulary", "a list of at least 2 unique tokens", vocab)
        seq_len = _int(data, "seq_len", path, "data.")
        if seq_len * len(vocab) > MAX_OUTPUTS:
            raise _fail(
                path,
                "data.seq_len",
                f"at most {MAX_OUTPUTS:,} outputs per point with the vocabulary's "
                f"{len(vocab)} tokens (seq_len x vocabulary)",
                seq_len,
            )
        _choice(data, "tokenizer", TOKENIZERS, path, "data.")
    else:
        shape = _get(data, "shape", path, "data.")
        if not (
            isinstance(shape, list)
            and len(shape) == 2
            and all(
                isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 4096 for s in shape
            )
        ):
            raise _fail(path, "data.shape", "[height, width] with sizes from 1 to 4096", shape)
        if shape[0] * shape[1] > MAX_OUTPUTS:
            raise _fail(path, "data.shape", f"at most {MAX_OUTPUTS:,} pixels", shape)
    return data


def load_manifest(directory: Path) -> dict[str, Any]:
    """Read and validate `directory`/manifest.json.

    Returns:
        The manifest as a dict, with ``decoder``, ``encoder`` (and ``classifier``, if present)
        replaced by :class:`ModuleSpec` objects.

    Raises:
        ManifestError: the file is missing, too large, not JSON, or a field is missing or
            wrong (the message names the field).
    """
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{path}: the model manifest is missing.")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes; not a manifest.")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}).") from exc
    if not isinstance(record, dict):
        raise ManifestError(f"{path}: expected a JSON object; got {type(record).__name__}.")
    if record.get("format") != FORMAT:
        raise _fail(path, "format", f"'{FORMAT}'", record.get("format"))
    if record.get("format_version") != FORMAT_VERSION:
        raise _fail(path, "format_version", str(FORMAT_VERSION), record.get("format_version"))
    name = _get(record, "name", path)
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(path, "name", "letters, digits, '-', '_', ':' or '.' (at most 64)", name)
    _choice(record, "task", TASKS, path)
    _int(record, "latent_dim", path)
    scale = _get(record, "prior_scale", path)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < 1e6:
        raise _fail(path, "prior_scale", "a positive number", scale)
    _choice(record, "likelihood", LIKELIHOODS, path)
    _choice(record, "render", RENDERS, path)
    check_data(_get(record, "data", path), path)
    record["decoder"] = _module_spec(record, "decoder", path)
    record["encoder"] = _module_spec(record, "encoder", path)
    if "classifier" in record:
        record["classifier"] = _module_spec(record, "classifier", path)
    reference = _get(record, "reference", path)
    if not isinstance(reference, dict):
        raise _fail(path, "reference", "an object", reference)
    _file(reference, path, "reference")
    _sha(reference, path, "reference")
    return record


def build_module(spec: ModuleSpec, where: str) -> nn.Module:
    """Construct the (untrained) module a spec names.

    The module is first built on PyTorch's ``meta`` device (shapes only, no memory) and its
    size checked, so absurd parameters (a hidden width of 65536, say) are refused instead of
    allocating gigabytes.

    Raises:
        ManifestError: the parameters do not fit the architecture, or the module would have
            more than :data:`MAX_PARAMETERS` parameters.
    """
    factory = ARCHITECTURES[spec.architecture]
    try:
        with torch.device("meta"):
            shell = factory(**spec.params)
    except Exception as exc:  # any constructor error means the parameters do not fit
        raise ManifestError(
            f"{where}: parameters {dict(spec.params)} do not fit architecture "
            f"'{spec.architecture}' ({type(exc).__name__}: {exc})."
        ) from exc
    count = sum(p.numel() for p in shell.parameters())
    if count > MAX_PARAMETERS:
        raise ManifestError(
            f"{where}: architecture '{spec.architecture}' with {dict(spec.params)} would have "
            f"{count:,} parameters; at most {MAX_PARAMETERS:,} are built."
        )
    return factory(**spec.params)


def load_tensors(directory: Path, file: str, sha256: str, field: str) -> dict[str, Tensor]:
    """Read a safetensors file of the model directory after checking its SHA-256.

    Raises:
        ManifestError: the file is missing, its checksum differs from the manifest's
            (tampered or replaced), or it is not a safetensors file.
    """
    path = Path(directory) / file
    if not path.is_file():
        raise ManifestError(f"{path}: file named by manifest field '{field}.file' is missing.")
    actual = sha256_of(path)
    if actual != sha256:
        raise ManifestError(
            f"{path}: SHA-256 {actual} differs from manifest field '{field}.sha256' ({sha256}); "
            "the file was modified or replaced. Restore it or re-run training."
        )
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ManifestError(f"{path}: not a readable safetensors file ({exc}).") from exc


def load_module_weights(directory: Path, spec: ModuleSpec, field: str) -> nn.Module:
    """Build the module a spec names and load its weights (eval mode, CPU).

    Raises:
        ManifestError: missing, tampered or unreadable file, or tensors whose names or shapes
            differ from the architecture's (the message names the tensor).
    """
    module = build_module(spec, f"{Path(directory) / MANIFEST_FILE} field '{field}'")
    state = load_tensors(directory, spec.file, spec.sha256, field)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ManifestError(
            f"{Path(directory) / spec.file}: tensors do not match architecture "
            f"'{spec.architecture}': missing {missing[:5]}, unexpected {extra[:5]}."
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise ManifestError(
                f"{Path(directory) / spec.file}: tensor '{key}' has shape {tuple(tensor.shape)}; "
                f"architecture '{spec.architecture}' with {dict(spec.params)} needs "
                f"{tuple(expected[key].shape)}."
            )
    module.load_state_dict(state)
    return module.eval().requires_grad_(False)


def save_tensors(path: Path, tensors: Mapping[str, Tensor]) -> str:
    """Write tensors as safetensors (no metadata, so reruns are byte-identical); return SHA."""
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, path)
    return sha256_of(path)


def module_record(architecture: str, params: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The manifest record of a weights file already written at `path`."""
    return {
        "architecture": architecture,
        "params": dict(params),
        "file": path.name,
        "sha256": sha256_of(path),
    }
