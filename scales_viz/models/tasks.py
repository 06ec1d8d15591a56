"""The rules of each task: what makes a decoded object valid, and the objectives on it.

Built-in models (:mod:`scales_viz.models.registry`), the ScaLES authors' checkpoints
(:mod:`scales_viz.models.paper`), user manifests (:mod:`scales_viz.models.user_manifest`) and
the training recipes all take their task rules and codecs from here, so none of them imports
another to get them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from scales_viz.errors import InputValueError
from scales_viz.models.base import Objective, per_object
from scales_viz.models.codecs import ImageCodec, SequenceCodec
from scales_viz.models.expressions import fit_target, is_valid_expression
from scales_viz.models.manifest import MANIFEST_FILE, ManifestError, load_module_weights
from scales_viz.models.molecules import (
    CHEM_EXTRA_HINT,
    MissingExtraError,
    is_valid_smiles,
    penalized_logp,
    qed,
    rdkit_available,
    tokenize_smiles,
)

__all__ = [
    "DIGIT_CLASSES",
    "DIGIT_PIXEL_MAX",
    "SEQUENCE_OBJECTIVES",
    "TOKENIZERS",
    "Validity",
    "codec_of",
    "digits_task",
    "sequence_objectives",
    "task_rules",
    "unavailable_reason",
]

#: A decoded digit is valid when the classifier gives its top class at least this probability.
DIGIT_VALIDITY_THRESHOLD = 0.9
DIGIT_CLASSES = 10
#: The digits' stored pixel values run 0..16.
DIGIT_PIXEL_MAX = 16.0
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "characters": list,
    "smiles": tokenize_smiles,
}


def unavailable_reason(task: str) -> str:
    if task == "molecules" and not rdkit_available():
        return f"needs RDKit: {CHEM_EXTRA_HINT}"
    return ""


def codec_of(data: dict[str, Any]) -> SequenceCodec | ImageCodec:
    """The codec a validated ``data`` table describes."""
    if data["kind"] == "sequence":
        return SequenceCodec(data["vocabulary"], data["seq_len"], TOKENIZERS[data["tokenizer"]])
    return ImageCodec(data["shape"])


Validity = Callable[[Sequence[Any]], np.ndarray]


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
    reason = unavailable_reason(task)
    if reason:
        raise MissingExtraError(f"the {task} task {reason}.")
    if task == "expressions":
        return per_object(is_valid_expression), sequence_objectives(["fit_target"])
    if task == "molecules":
        return per_object(is_valid_smiles), sequence_objectives(["penalized_logp", "qed"])
    raise InputValueError(f"task_rules knows expressions and molecules; got {task!r}.")


def digits_task(
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
