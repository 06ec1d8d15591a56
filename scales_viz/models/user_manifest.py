"""User model manifests (TOML or JSON): a decoder you trained, described in one file.

A manifest names safetensors weights for one of scales-viz's configurable architectures (or a
``torch.export`` program), the data layout, the validity rule and the objectives. Example
(``model.toml``, files relative to it)::

    name = "my-expressions-vae"
    latent_dim = 25
    prior_scale = 1.0

    [data]                      # or: kind = "image", shape = [8, 8]
    kind = "sequence"
    vocabulary = ["x", "+", "(", ")", "1", "2", "3", "*", "/", "s", "i", "n", "e", "p", " "]
    seq_len = 19
    tokenizer = "characters"    # or "smiles"; the last token is the pad

    [decoder]                   # architecture + params + file, or: program = "decoder.pt2"
    architecture = "softmax_feedback_rnn"   # also: softmax_input_rnn, mlp_sequence,
    file = "decoder.safetensors"            #   transformer_sequence; images: bernoulli_mlp,
                                            #   bernoulli_conv (see below)
    sha256 = "..."              # optional; checked when given
    [decoder.params]
    latent_dim = 25
    seq_len = 19
    vocab_size = 15
    cell = "lstm"

    [encoder]                   # optional (needed to encode data)
    architecture = "conv_sequence_encoder"  # also: mlp_encoder; images: conv_image_encoder
    file = "encoder.safetensors"
    [encoder.params]
    seq_len = 19
    vocab_size = 15
    latent_dim = 25

    [validity]
    rule = "expressions"        # "regex" (with pattern = "..."), "expressions", "rdkit", "all"
    objectives = ["fit_target"] # from: fit_target, penalized_logp, qed, length

    [reference]                 # optional: file = "reference.safetensors" (tensor "latents"),
    data = "data.txt"           # or data: one object per line, encoded with the encoder

An image model (pixels in [0, 1]; the decoder gives Bernoulli logits `n x H*W`, row by row)
with the convolutional architectures, whose `height` and `width` must be the data shape::

    [data]
    kind = "image"
    shape = [28, 28]            # [H, W]

    [decoder]
    architecture = "bernoulli_conv"         # or bernoulli_mlp (latent_dim, pixels, hidden)
    file = "decoder.safetensors"
    [decoder.params]
    latent_dim = 8
    height = 28
    width = 28
    channels = [32, 16, 8]      # coarsest first; each further entry doubles height and width

    [encoder]
    architecture = "conv_image_encoder"     # or mlp_encoder (inputs = H*W, latent_dim, hidden)
    file = "encoder.safetensors"
    [encoder.params]
    height = 28
    width = 28
    latent_dim = 8
    channels = [8, 16]          # each entry a stride-2 convolution
    hidden = 64

Image models take ``rule = "all"`` and no objectives; their reference latents come from
``reference.file`` (a text file of objects is for sequence models).
Without reference data, the reference latents are 500 prior samples (seed 0); the model card
and views then say "no reference data". Every field is validated and errors name the file and
the field; weights whose tensors differ from the architecture name the tensor.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch
from torch import Tensor, nn

from scales_viz.errors import InputValueError
from scales_viz.models.base import Objective, VAEModel, per_object
from scales_viz.models.codecs import ImageCodec, SequenceCodec
from scales_viz.models.manifest import (
    MAX_MANIFEST_BYTES,
    ManifestError,
    ModuleSpec,
    check_data,
    load_module_weights,
    load_tensors,
    sha256_of,
)
from scales_viz.models.tasks import SEQUENCE_OBJECTIVES, codec_of, sequence_objectives

__all__ = ["DECODER_ARCHITECTURES", "OBJECTIVES", "VALIDITY_RULES", "load_user_manifest"]

DECODER_ARCHITECTURES = (
    "softmax_feedback_rnn",
    "softmax_input_rnn",
    "mlp_sequence",
    "transformer_sequence",
    "bernoulli_mlp",
    "bernoulli_conv",
)
ENCODER_ARCHITECTURES = ("conv_sequence_encoder", "mlp_encoder", "conv_image_encoder")
#: Architectures whose `height` and `width` parameters must be the data section's shape.
IMAGE_ARCHITECTURES = ("bernoulli_conv", "conv_image_encoder")
VALIDITY_RULES = ("all", "regex", "expressions", "rdkit")
OBJECTIVES = tuple(SEQUENCE_OBJECTIVES)
PRIOR_REFERENCE = 500
MAX_REFERENCE_LINES = 100_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _fail(path: Path, field: str, expected: str, got: object) -> ManifestError:
    shown = repr(got)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ManifestError(f"{path}: field '{field}' must be {expected}; got {shown}.")


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ManifestError(f"{path}: the manifest file is missing.")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes; not a manifest.")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
        record = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (
        UnicodeDecodeError,
        tomllib.TOMLDecodeError,
        json.JSONDecodeError,
        RecursionError,
    ) as exc:
        raise ManifestError(f"{path}: not valid {path.suffix[1:].upper()} ({exc}).") from exc
    if not isinstance(record, dict):
        raise ManifestError(f"{path}: expected a table/object at the top level.")
    return record


def _section(record: Mapping[str, Any], key: str, path: Path, required: bool = True) -> Any:
    if key not in record:
        if required:
            raise ManifestError(f"{path}: required field '{key}' is missing.")
        return None
    value = record[key]
    if not isinstance(value, dict):
        raise _fail(path, key, "a table", value)
    return value


def _positive_int(record: Mapping[str, Any], key: str, path: Path, limit: int) -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise _fail(path, key, f"an integer from 1 to {limit}", value)
    return value


def _local_file(record: Mapping[str, Any], key: str, path: Path, field: str, suffix: str) -> Path:
    name = record.get(key)
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(suffix):
        raise _fail(path, field, f"a {suffix} file name beside the manifest", name)
    file = path.parent / name
    if not file.is_file():
        raise ManifestError(f"{path}: field '{field}' names {name}, which is missing.")
    return file


def _module(section: Mapping[str, Any], path: Path, field: str, allowed: Sequence[str]) -> Any:
    """A decoder/encoder section as a loaded module."""
    if "program" in section:
        program = _local_file(section, "program", path, f"{field}.program", ".pt2")
        try:
            exported = torch.export.load(str(program))
        except Exception as exc:
            raise ManifestError(f"{program}: not a torch.export program ({exc}).") from exc
        return _Program(exported.module())
    architecture = section.get("architecture")
    if architecture not in allowed:
        raise _fail(path, f"{field}.architecture", f"one of {list(allowed)}", architecture)
    params = section.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise _fail(path, f"{field}.params", "a table of constructor arguments", params)
    weights = _local_file(section, "file", path, f"{field}.file", ".safetensors")
    actual = sha256_of(weights)
    digest = section.get("sha256")
    if digest is not None and digest != actual:
        raise ManifestError(
            f"{weights}: its SHA-256 differs from field '{field}.sha256' (changed or damaged)."
        )
    spec = ModuleSpec(str(architecture), dict(params), weights.name, actual)
    return load_module_weights(path.parent, spec, field)


def _check_image_params(
    section: Mapping[str, Any] | None, codec: SequenceCodec | ImageCodec, path: Path, field: str
) -> None:
    """A conv image architecture's `height` and `width` are the data section's shape."""
    architecture = (section or {}).get("architecture")
    if architecture not in IMAGE_ARCHITECTURES:
        return
    if not isinstance(codec, ImageCodec):
        expected = "a sequence architecture for sequence data"
        raise _fail(path, f"{field}.architecture", expected, architecture)
    params = (section or {}).get("params")
    if not isinstance(params, dict):
        return  # reported by _module
    for key, size in zip(("height", "width"), codec.shape, strict=True):
        if key in params and params[key] != size:
            raise _fail(path, f"{field}.params.{key}", f"{size} (data.shape)", params[key])


def _codec(data: Mapping[str, Any], path: Path) -> SequenceCodec | ImageCodec:
    """The codec of the ``data`` table (validated like a built-in manifest's)."""
    record = dict(data)
    if record.get("kind") == "sequence":
        record.setdefault("tokenizer", "characters")
    return codec_of(check_data(record, path))


def _rules(
    section: Mapping[str, Any] | None, codec: SequenceCodec | ImageCodec, path: Path
) -> tuple[Callable[[Sequence[Any]], np.ndarray], dict[str, Objective], str]:
    """Validity, objectives and how objects render."""
    from scales_viz.models.expressions import is_valid_expression
    from scales_viz.models.molecules import (
        CHEM_EXTRA_HINT,
        MissingExtraError,
        is_valid_smiles,
        rdkit_available,
    )

    section = section or {}
    rule = section.get("rule", "all")
    if rule not in VALIDITY_RULES:
        raise _fail(path, "validity.rule", f"one of {list(VALIDITY_RULES)}", rule)
    names = section.get("objectives", ["length"] if isinstance(codec, SequenceCodec) else [])
    if not isinstance(names, list) or not all(n in OBJECTIVES for n in names):
        raise _fail(path, "validity.objectives", f"a list from {list(OBJECTIVES)}", names)
    if isinstance(codec, ImageCodec) and (rule != "all" or names):
        raise ManifestError(
            f"{path}: image models take validity.rule = 'all' and no objectives here "
            "(use a python:module:factory model for a classifier)."
        )
    uses_rdkit = rule == "rdkit" or any(n in ("penalized_logp", "qed") for n in names)
    if uses_rdkit and not rdkit_available():
        raise MissingExtraError(f"{path}: the rule or objectives need RDKit: {CHEM_EXTRA_HINT}")
    validity: Callable[[Sequence[Any]], np.ndarray]
    if rule == "all":
        validity = per_object(lambda obj: 1.0)
    elif rule == "regex":
        pattern = section.get("pattern")
        try:
            compiled = re.compile(str(pattern)) if isinstance(pattern, str) else None
        except re.error as exc:
            raise _fail(
                path, "validity.pattern", "a regular expression", f"{pattern} ({exc})"
            ) from exc
        if compiled is None:
            raise _fail(path, "validity.pattern", "a regular expression", pattern)
        validity = per_object(lambda text: float(bool(compiled.fullmatch(str(text)))))
    elif rule == "expressions":
        validity = per_object(is_valid_expression)
    else:
        validity = per_object(is_valid_smiles)
    objectives = sequence_objectives(names)
    render = "image" if isinstance(codec, ImageCodec) else ("molecule" if uses_rdkit else "text")

    def as_bool(objects: Sequence[Any]) -> np.ndarray:
        return np.asarray(validity(objects), dtype=bool)

    return as_bool, objectives, render


class _Program(nn.Module):
    """A ``torch.export`` program as a decoder.

    Exported graphs refuse ``train()``/``eval()`` and are specialised to the dtype they were
    exported in, so the graph is held outside the module tree: mode switches and ``.to()``
    leave it alone, and inputs are cast to float32 and outputs back to the input's dtype (a
    program computes in float32 whatever the caller asks).
    """

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "graph", graph)
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, z: Tensor) -> Tensor:
        out: Tensor = self.graph(z.float())  # type: ignore[operator]
        return out.to(z.dtype)


class _FlattenFirst(nn.Module):
    """An MLP encoder on one-hot sequences: flattens `n x L x V` to `n x (L V)` first."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        result: tuple[Tensor, Tensor] = self.encoder(x.flatten(1))
        return result


class _NoEncoder(nn.Module):
    """Stands in for a missing encoder: encoding data says clearly that it cannot."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise InputValueError(
            f"model {self.name!r} has no encoder: add an [encoder] section to its manifest "
            "to encode data."
        )


def _reference(
    section: Mapping[str, Any] | None,
    path: Path,
    *,
    encoder: nn.Module,
    codec: SequenceCodec | ImageCodec,
    latent_dim: int,
    prior_scale: float,
) -> tuple[Tensor, list[Any], str]:
    if section and "file" in section:
        file = _local_file(section, "file", path, "reference.file", ".safetensors")
        tensors = load_tensors(path.parent, file.name, sha256_of(file), "reference")
        latents = tensors.get("latents")
        if latents is None or latents.ndim != 2 or latents.shape[1] != latent_dim:
            got = None if latents is None else tuple(latents.shape)
            raise ManifestError(f"{file}: tensor 'latents' must be n x {latent_dim}; got {got}.")
        return latents.float(), [f"reference {i}" for i in range(len(latents))], "reference file"
    if section and "data" in section:
        if not isinstance(codec, SequenceCodec) or isinstance(encoder, _NoEncoder):
            raise ManifestError(
                f"{path}: field 'reference.data' needs a sequence model with an [encoder]."
            )
        file = _local_file(section, "data", path, "reference.data", ".txt")
        lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines or len(lines) > MAX_REFERENCE_LINES:
            raise _fail(path, "reference.data", f"1 to {MAX_REFERENCE_LINES} lines", len(lines))
        try:
            inputs = codec.one_hot(codec.to_indices(lines))
        except InputValueError as exc:
            raise ManifestError(f"{file}: {exc}") from exc
        with torch.no_grad():
            latents = encoder(inputs)[0]
        return latents.float(), lines, f"{len(lines)} objects from {file.name}"
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(PRIOR_REFERENCE, latent_dim, generator=gen) * prior_scale
    return latents, [f"prior {i}" for i in range(PRIOR_REFERENCE)], "no reference data"


def load_user_manifest(path: str | Path) -> VAEModel:
    """A :class:`VAEModel` from a user manifest (``.toml`` or ``.json``; see the module doc).

    Raises:
        ManifestError: a missing or wrong field (named), missing or damaged files, tensors that
            do not fit the architecture (named), or a decoder whose output does not fit the
            data section.
        MissingExtraError: the rule or objectives need RDKit and it is not installed.
    """
    path = Path(path).expanduser().resolve()
    if path.suffix not in (".toml", ".json"):
        raise ManifestError(f"{path}: a manifest is a .toml or .json file.")
    record = _read(path)
    name = record.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(path, "name", "letters, digits, '-', '_' or '.' (at most 64)", name)
    latent_dim = _positive_int(record, "latent_dim", path, 4096)
    scale = record.get("prior_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < 1e6:
        raise _fail(path, "prior_scale", "a positive number", scale)
    codec = _codec(_section(record, "data", path), path)
    decoder_section = _section(record, "decoder", path)
    _check_image_params(decoder_section, codec, path, "decoder")
    decoder = _module(decoder_section, path, "decoder", DECODER_ARCHITECTURES)
    encoder_section = _section(record, "encoder", path, required=False)
    _check_image_params(encoder_section, codec, path, "encoder")
    encoder = (
        _module(encoder_section, path, "encoder", ENCODER_ARCHITECTURES)
        if encoder_section is not None
        else _NoEncoder(name)
    )
    if (
        isinstance(codec, SequenceCodec)
        and encoder_section is not None
        and encoder_section.get("architecture") == "mlp_encoder"
    ):
        encoder = _FlattenFirst(encoder)
    _check_output(decoder, codec, latent_dim, path)
    validity, objectives, render = _rules(
        _section(record, "validity", path, required=False), codec, path
    )
    latents, objects, source = _reference(
        _section(record, "reference", path, required=False),
        path,
        encoder=encoder,
        codec=codec,
        latent_dim=latent_dim,
        prior_scale=float(scale),
    )
    manifest = dict(record)
    digest = hashlib.sha256(path.read_bytes())
    for file in sorted(path.parent.glob("*.safetensors")) + sorted(path.parent.glob("*.pt2")):
        digest.update(file.read_bytes())
    manifest["decoder"] = {"sha256": digest.hexdigest()}
    manifest["source"] = str(path)
    manifest["dataset"] = {"reference data": source}
    manifest.setdefault("description", f"user model from {path.name}")
    return VAEModel(
        name=name,
        decoder=decoder,
        encoder=encoder,
        codec=codec,
        validity=validity,
        objectives=objectives,
        render=render,  # type: ignore[arg-type]
        prior_scale=float(scale),
        data_latents=latents,
        data_objects=objects,
        manifest=manifest,
        directory=None,
    )


def _check_output(
    decoder: nn.Module, codec: SequenceCodec | ImageCodec, latent_dim: int, path: Path
) -> None:
    """The decoder maps `n x d` to the layout the data section implies."""
    expected = (
        (2, codec.seq_len, codec.vocab_size)
        if isinstance(codec, SequenceCodec)
        else (2, codec.pixels)
    )
    try:
        with torch.no_grad():
            out = decoder(torch.zeros(2, latent_dim))
    except Exception as exc:
        raise ManifestError(
            f"{path}: the decoder fails on 2 x {latent_dim} latents (a torch.export program "
            f"needs a dynamic batch dimension): {exc}"
        ) from exc
    if not isinstance(out, Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ManifestError(
            f"{path}: the decoder returns {got} for 2 x {latent_dim} latents; the data section "
            f"implies {expected}."
        )
