"""The ScaLES paper's released checkpoints as scales-viz models.

``load_paper_model("expressions_gru_1", path=...)`` (or ``load_model("scales-paper:NAME",
path=...)``) rebuilds the authors' decoder (:class:`SoftmaxFeedbackRNNDecoder`, GRU or LSTM)
and conv encoder (:class:`ConvSequenceEncoder`) from their state dict, read with
``torch.load(..., weights_only=True)`` (nothing is unpickled beyond tensors), with the paper's
vocabulary, prior scale (``eps_std``), validity rule and objectives.

The checkpoints are not part of scales-viz (MIT licence, copyright the authors). Point `path`
at a folder holding them (``NAME.pth``, and ``smiles_vocab.yaml`` for the SMILES models), or
set ``SCALES_PAPER_DIR``. The reference data latents (for distance-to-data, maps and the
Model view) are encoder means of data in the model's own language: for the expression models,
1000 distinct strings of the authors' training shape (:func:`authors_expressions`, seed 0;
Kusner et al.'s equation dataset, which is not shipped, has only strings of that shape), and
for the SMILES models the built-in molecules model's reference SMILES.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scales_viz.errors import InputValueError
from scales_viz.models.base import VAEModel
from scales_viz.models.codecs import SequenceCodec
from scales_viz.models.decoders import SoftmaxFeedbackRNNDecoder
from scales_viz.models.encoders import ConvSequenceEncoder
from scales_viz.models.expressions import EXPRESSION_VOCAB
from scales_viz.models.manifest import ManifestError, ModuleSpec, sha256_of

__all__ = [
    "AUTHORS_EXPRESSION_COUNT",
    "PAPER_DIR_ENV",
    "PAPER_MODELS",
    "PaperSpec",
    "authors_expressions",
    "load_paper_model",
    "paper_dir",
]

PAPER_DIR_ENV = "SCALES_PAPER_DIR"
PREFIX = "scales-paper:"
#: Largest checkpoint accepted (the released ones are about 1.5 MB).
MAX_CHECKPOINT_BYTES = 64 * 2**20
REFERENCE_SIZE = 1000


@dataclass(frozen=True)
class PaperSpec:
    """What the authors' README says about one checkpoint."""

    task: str
    cell: str
    latent_dim: int
    seq_len: int
    vocab_size: int
    prior_scale: float
    channels: tuple[int, int, int]
    kernels: tuple[int, int, int]


def _expressions(cell: str) -> PaperSpec:
    return PaperSpec("expressions", cell, 25, 19, 15, 0.1, (2, 3, 4), (2, 3, 4))


def _smiles(cell: str) -> PaperSpec:
    return PaperSpec("molecules", cell, 56, 120, 35, 0.001, (9, 9, 10), (9, 9, 11))


PAPER_MODELS: dict[str, PaperSpec] = {
    "expressions_gru_1": _expressions("gru"),
    "expressions_lstm_1": _expressions("lstm"),
    "smiles_gru_1": _smiles("gru"),
    "smiles_lstm_1": _smiles("lstm"),
}


_TERMS = ("x", "1", "2", "3")
_CALLS = ("(", "sin(", "exp(")
#: `t o t`: the first summand.
_PAIRS = tuple(a + o + b for o in "+*/" for a in _TERMS for b in _TERMS)
#: `M`: `(t)`, `sin(t)`, `exp(t)` or a bare `t`.
_MIDDLES = tuple(f + t + ")" for f in _CALLS for t in _TERMS) + _TERMS
#: `N`: `F(t o t)` or `F(t)` with `F` one of `(`, `sin(`, `exp(`, or a bare `t`.
_LASTS = tuple(f + x + ")" for f in _CALLS for x in _PAIRS + _TERMS) + _TERMS
#: How many distinct strings :func:`authors_expressions` draws from (48 * 16 * 160).
AUTHORS_EXPRESSION_COUNT = len(_PAIRS) * len(_MIDDLES) * len(_LASTS)


def authors_expressions(n: int, seed: int = 0) -> list[str]:
    """`n` distinct expressions of the shape of the authors' training data, drawn uniformly.

    The expression checkpoints were trained on Kusner et al.'s ``equation2_15_dataset.txt``
    (the first 100,000 strings of a fixed enumeration), and every one of its strings is
    ``t o t + M + N``: terminals ``t`` in ``x 1 2 3``, operators ``o`` in ``+ * /``; ``M`` is
    ``(t)``, ``sin(t)``, ``exp(t)`` or ``t``; ``N`` is ``F(t o t)`` or ``F(t)`` with ``F``
    one of ``(``, ``sin(``, ``exp(``, or a bare ``t``. That makes
    :data:`AUTHORS_EXPRESSION_COUNT` (122,880) strings of at most 19 characters, each with
    one parse, so drawing the three parts uniformly is drawing the string uniformly.

    Nothing is read or downloaded: the strings are drawn without replacement with
    ``random.Random(seed)``, in draw order, so the same `n` and `seed` give the same list.

    Raises:
        InputValueError: `n` is negative or more than :data:`AUTHORS_EXPRESSION_COUNT`.
    """
    if not 0 <= n <= AUTHORS_EXPRESSION_COUNT:
        raise InputValueError(
            f"authors_expressions: n must be 0..{AUTHORS_EXPRESSION_COUNT}; got {n}."
        )
    middles, lasts = len(_MIDDLES), len(_LASTS)
    out = []
    for index in random.Random(seed).sample(range(AUTHORS_EXPRESSION_COUNT), n):
        pair, rest = divmod(index, middles * lasts)
        middle, last = divmod(rest, lasts)
        out.append(f"{_PAIRS[pair]}+{_MIDDLES[middle]}+{_LASTS[last]}")
    return out


def paper_dir() -> Path:
    """``$SCALES_PAPER_DIR``, else ``../shared/scales-paper`` beside the checkout."""
    env = os.environ.get(PAPER_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "scales-paper"


def _smiles_vocab(path: Path) -> tuple[str, ...]:
    """The SMILES vocabulary from ``smiles_vocab.yaml`` (``char: index`` lines), by index."""
    if not path.is_file():
        raise ManifestError(f"{path}: the SMILES vocabulary file is missing.")
    found: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"\s*('(.)'|(\S))\s*:\s*(\d+)\s*", line)
        if match is None:
            raise ManifestError(f"{path}: line {number} is not 'character: index': {line!r}.")
        char = match.group(2) if match.group(2) is not None else match.group(3)
        found[int(match.group(4))] = char
    vocab = tuple(found[i] for i in range(len(found)) if i in found)
    if len(vocab) != len(found) or vocab[-1] != " ":
        raise ManifestError(
            f"{path}: indices must run 0..{len(found) - 1} with the space (pad) last."
        )
    return vocab


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ManifestError(
            f"{path} is missing: point `path` (or ${PAPER_DIR_ENV}) at the folder holding "
            "the ScaLES authors' checkpoints."
        )
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise ManifestError(
            f"{path} is {size} bytes; a released checkpoint is under {MAX_CHECKPOINT_BYTES}."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled code; anything else is corrupt
        raise ManifestError(f"{path} is not a plain PyTorch state dict: {exc}") from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ManifestError(f"{path}: expected a dict of named tensors (a state dict).")
    return state


def _load_part(module: nn.Module, state: dict[str, torch.Tensor], prefix: str, path: Path) -> None:
    """Load the `prefix.*` tensors into `module`, naming any missing or mis-shaped tensor."""
    wanted = module.state_dict()
    part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    for key, tensor in wanted.items():
        if key not in part:
            raise ManifestError(f"{path}: tensor '{prefix}{key}' is missing.")
        if tuple(part[key].shape) != tuple(tensor.shape):
            raise ManifestError(
                f"{path}: tensor '{prefix}{key}' has shape {tuple(part[key].shape)}; the "
                f"architecture needs {tuple(tensor.shape)}."
            )
    module.load_state_dict({k: part[k] for k in wanted}, strict=True)


def _reference(task: str, codec: SequenceCodec) -> list[str]:
    """Data objects in the model's language, for its reference latents."""
    if task == "expressions":
        return authors_expressions(REFERENCE_SIZE, seed=0)  # all fit the codec
    from scales_viz.models.registry import load_builtin

    texts = load_builtin("molecules").data_objects
    fits = []
    for text in texts:
        tokens = codec.tokenize(text)
        if len(tokens) <= codec.seq_len and all(t in codec.vocab[:-1] for t in tokens):
            fits.append(text)
        if len(fits) == REFERENCE_SIZE:
            break
    return list(dict.fromkeys(fits))


def load_paper_model(name: str, path: str | os.PathLike[str] | None = None) -> VAEModel:
    """One of the four released checkpoints as a :class:`VAEModel`.

    Its reference data (``data_objects``; ``data_latents`` are their encoder means) are, for
    the expression models, :func:`authors_expressions` ``(1000, seed=0)``: strings of the
    authors' training shape, which the models decode back validly; for the SMILES models,
    the built-in molecules model's reference SMILES that fit the vocabulary and length.

    Args:
        name: ``expressions_gru_1``, ``expressions_lstm_1``, ``smiles_gru_1`` or
            ``smiles_lstm_1`` (a ``scales-paper:`` prefix is allowed).
        path: the folder holding ``NAME.pth`` (default :func:`paper_dir`).

    Raises:
        InputValueError: an unknown name.
        ManifestError: the file is missing, too big, not a plain state dict, or its tensors do
            not fit the architecture (the message names the tensor).
        MissingExtraError: a SMILES model without RDKit (``pip install 'scales-viz[chem]'``).
    """
    from scales_viz.models.tasks import task_rules

    short = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if short not in PAPER_MODELS:
        raise InputValueError(
            f"no released ScaLES checkpoint {name!r}; known: {sorted(PAPER_MODELS)}."
        )
    spec = PAPER_MODELS[short]
    folder = Path(path).expanduser() if path is not None else paper_dir()
    file = folder / f"{short}.pth"
    state = _state_dict(file)
    if spec.task == "expressions":
        codec = SequenceCodec(EXPRESSION_VOCAB, spec.seq_len, list)
    else:
        codec = SequenceCodec(_smiles_vocab(folder / "smiles_vocab.yaml"), spec.seq_len, list)
    if codec.vocab_size != spec.vocab_size:
        raise ManifestError(
            f"{folder}: the vocabulary has {codec.vocab_size} tokens; {short} needs "
            f"{spec.vocab_size}."
        )
    decoder = SoftmaxFeedbackRNNDecoder(
        spec.latent_dim,
        spec.seq_len,
        spec.vocab_size,
        hidden=100,
        layers=3,
        cell=spec.cell,  # type: ignore[arg-type]
    )
    encoder = ConvSequenceEncoder(
        spec.seq_len,
        spec.vocab_size,
        spec.latent_dim,
        channels=spec.channels,
        kernels=spec.kernels,
        hidden=100,
    )
    _load_part(decoder, state, "decoder.", file)
    _load_part(encoder, state, "encoder.", file)
    decoder.eval()
    encoder.eval()
    validity, objectives = task_rules(spec.task, decoder, codec)
    objects = _reference(spec.task, codec)
    inputs = codec.one_hot(codec.to_indices(objects))
    with torch.no_grad():
        latents = encoder(inputs)[0]
    checksum = sha256_of(file)
    decoder_params = {
        "latent_dim": spec.latent_dim,
        "seq_len": spec.seq_len,
        "vocab_size": spec.vocab_size,
        "hidden": 100,
        "layers": 3,
        "cell": spec.cell,
    }
    encoder_params = {"channels": list(spec.channels), "kernels": list(spec.kernels)}
    manifest: dict[str, Any] = {
        "name": PREFIX + short,
        "task": spec.task,
        "description": f"the ScaLES authors' {short} ({spec.cell.upper()} decoder, beta 1)",
        "latent_dim": spec.latent_dim,
        "prior_scale": spec.prior_scale,
        "data": {
            "kind": "sequence",
            "seq_len": spec.seq_len,
            "vocabulary": list(codec.vocab),
            "tokenizer": "characters",
        },
        "decoder": ModuleSpec("softmax_feedback_rnn", decoder_params, file.name, checksum),
        "encoder": ModuleSpec("conv_sequence_encoder", encoder_params, file.name, checksum),
        "reference": {"sha256": hashlib.sha256("\n".join(objects).encode()).hexdigest()},
        "dataset": {
            "weights": f"the ScaLES authors' released checkpoint {file.name} (MIT licence)",
            "reference data": (
                f"{len(objects)} distinct expressions of the authors' training shape "
                "(t o t + M + N, as in Kusner et al.'s equation dataset; "
                "scales_viz.models.paper.authors_expressions, seed 0)"
                if spec.task == "expressions"
                else f"{len(objects)} SMILES of the built-in molecules model's reference set"
            ),
        },
    }
    return VAEModel(
        name=PREFIX + short,
        decoder=decoder,
        encoder=encoder,
        codec=codec,
        validity=validity,
        objectives=objectives,
        render="text" if spec.task == "expressions" else "molecule",
        prior_scale=spec.prior_scale,
        data_latents=latents,
        data_objects=objects,
        manifest=manifest,
        directory=None,
    )
