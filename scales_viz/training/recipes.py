"""How each built-in model is trained: data, architecture, settings, and the files written.

``scales-viz train NAME --seed S`` runs :func:`train_builtin`. A model directory gets the
decoder, encoder (and for digits, classifier) weights as safetensors, ``reference.safetensors``
(encoded data latents with their inputs), ``manifest.json`` and ``training_log.json``.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import Tensor, nn

from scales_viz.errors import InputValueError
from scales_viz.models.codecs import SequenceCodec
from scales_viz.models.decoders import SoftmaxInputRNNDecoder
from scales_viz.models.expressions import (
    EXPRESSION_LENGTH,
    EXPRESSION_VOCAB,
    generate_expressions,
    is_valid_expression,
)
from scales_viz.models.manifest import (
    ARCHITECTURES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILE,
    module_record,
    save_tensors,
)
from scales_viz.models.molecules import SMILES_VOCAB, fetch_moses_smiles, is_valid_smiles
from scales_viz.models.tasks import DIGIT_CLASSES, DIGIT_PIXEL_MAX, TOKENIZERS
from scales_viz.training.vae import Checkpointing, TrainConfig, seeded, train_vae

__all__ = ["RECIPES", "DigitsRecipe", "SequenceRecipe", "train_builtin"]

LOG = logging.getLogger(__name__)

#: Held-out examples scored after every epoch (a fixed subset, to keep epochs cheap).
EPOCH_EVAL_SIZE = 2000
#: Earlier sequence recipes (a conv encoder with the paper's decoder, beta 0.25; a three-layer
#: teacher-forced decoder for molecules at beta 0.05) reconstructed about 1% (expressions) and
#: 0% (molecules) of held-out strings; the recipes below replace them (issues 15 and 16).
#: Where a resumable run keeps its state (``scales-viz train NAME --resume``).
CHECKPOINT_DIR = Path("checkpoints")


def _package_version() -> str:
    from scales_viz import __version__

    return __version__


def _provenance(seconds: float, config: TrainConfig) -> dict[str, Any]:
    return {
        **config.to_dict(),
        "train_seconds": round(seconds, 1),
        "command": shlex.join(["scales-viz", *sys.argv[1:]])
        if sys.argv and sys.argv[0].endswith("scales-viz")
        else shlex.join(sys.argv),
        "torch_version": torch.__version__,
        "package_version": _package_version(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _write_json(path: Path, record: object) -> None:
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _save_module(
    out: Path, name: str, architecture: str, params: dict[str, Any], module: nn.Module
) -> dict[str, Any]:
    path = out / f"{name}.safetensors"
    save_tensors(path, module.state_dict())
    return module_record(architecture, params, path)


@dataclass(frozen=True)
class SequenceRecipe:
    """A character-level sequence VAE: conv encoder, softmax-feedback GRU decoder.

    Attributes:
        name: model name.
        task: validity and objectives ("expressions" or "molecules").
        description: one line for the model card.
        render: "text" or "molecule".
        tokenizer: "characters" or "smiles".
        vocab: tokens in index order, pad last.
        seq_len: `L`.
        latent_dim: `d`.
        decoder: `SoftmaxFeedbackRNNDecoder` parameters besides the sizes.
        encoder: `ConvSequenceEncoder` parameters besides the sizes.
        config: optimisation settings (the seed is replaced by the caller's).
        n_train: training examples.
        n_held_out: held-out examples (reconstruction metrics, reference latents).
        n_reference: held-out examples encoded into ``reference.safetensors``.
        dataset: description of the data for the manifest.
        load: `(seed, data_dir)` -> all candidate strings (unique), before the split.
        prior_scale: std of the Gaussian prior.
        architecture: the decoder architecture (a key of the manifest's registry).
        teacher_forcing: train with the true previous tokens fed back (the decoder must have
            `forward_teacher`); decoding and all metrics use the decoder's own feedback.
        word_dropout: share of teacher-forced tokens dropped (fed back as all zeros).
        encoder_architecture: the encoder (a key of the manifest's registry).
    """

    name: str
    task: str
    description: str
    render: str
    tokenizer: str
    vocab: tuple[str, ...]
    seq_len: int
    latent_dim: int
    decoder: dict[str, Any]
    encoder: dict[str, Any]
    config: TrainConfig
    n_train: int
    n_held_out: int
    n_reference: int
    dataset: dict[str, Any]
    load: Callable[[int, Path], list[str]]
    prior_scale: float = 1.0
    architecture: str = "softmax_feedback_rnn"
    teacher_forcing: bool = False
    word_dropout: float = 0.0
    encoder_architecture: str = "conv_sequence_encoder"


@dataclass(frozen=True)
class DigitsRecipe:
    """A Bernoulli MLP VAE on scikit-learn's 8x8 digits, with a validity classifier."""

    name: str
    description: str
    latent_dim: int
    hidden: int
    config: TrainConfig
    classifier_hidden: int = 64
    classifier_epochs: int = 200
    held_out_fraction: float = 0.15
    prior_scale: float = 1.0
    dataset: dict[str, Any] = field(default_factory=dict)


def _expressions(seed: int, data_dir: Path) -> list[str]:
    del data_dir
    return generate_expressions(100_000 + 5_000, seed=seed)


def _molecules(seed: int, data_dir: Path) -> list[str]:
    del seed
    return fetch_moses_smiles(data_dir)


_EXPRESSIONS_DATA = {
    "source": "generated from the GrammarVAE arithmetic grammar "
    "(scales_viz.models.expressions.generate_expressions)",
    "unique": True,
    "max_length": EXPRESSION_LENGTH,
}
#: Both expression models: a convolutional encoder and a one-layer GRU decoder that reads the
#: latent and its previous output at every step; they differ only in what is fed back. A
#: bidirectional GRU encoder (embedding 32, width 128) learnt about half as fast per step
#: here: 200 steps of the autoregressive recipe gave train reconstruction 13.7 nats and 0.1%
#: exact held-out strings against 7.9 nats and 7.5% with this encoder.
_EXPRESSIONS_ENCODER = {"channels": [32, 32, 64], "kernels": [2, 3, 4], "hidden": 100}
_EXPRESSIONS_DECODER = {"hidden": 256, "layers": 1, "embed": 64, "cell": "gru", "dropout": 0.0}
#: A small KL weight: exact reconstruction needs the latent to carry most of an expression's
#: information. At beta 0.05 (free bits 0.05) the KL settled near 24 nats and after 1.6 epochs
#: only 0.1% (smooth) and 3% (autoregressive, 1 epoch) of held-out expressions came back.
_EXPRESSIONS_CONFIG = TrainConfig(
    seed=0,
    epochs=6,
    batch_size=256,
    learning_rate=2e-3,
    final_learning_rate=1e-4,
    kl_warmup_epochs=0.5,
    beta=0.01,
    grad_clip=5.0,
    log_every=100,
)

_EXPRESSIONS = SequenceRecipe(
    name="expressions",
    task="expressions",
    description="Arithmetic expressions (GrammarVAE grammar), smooth decoder (softmax fed "
    "back); fit 1/3 + x + sin(x*x).",
    render="text",
    tokenizer="characters",
    vocab=EXPRESSION_VOCAB,
    seq_len=EXPRESSION_LENGTH,
    latent_dim=25,
    decoder={**_EXPRESSIONS_DECODER, "feedback": "soft"},
    encoder=_EXPRESSIONS_ENCODER,
    encoder_architecture="conv_sequence_encoder",
    architecture="softmax_input_rnn",
    # Trained as it decodes: the softmax of each step is fed to the next, so the map
    # z -> logits that ScaLES differentiates is the one that was fitted.
    teacher_forcing=False,
    config=_EXPRESSIONS_CONFIG,
    n_train=100_000,
    n_held_out=5_000,
    n_reference=4_000,
    dataset=_EXPRESSIONS_DATA,
    load=_expressions,
)

RECIPES: dict[str, SequenceRecipe | DigitsRecipe] = {
    "expressions": _EXPRESSIONS,
    "expressions-ar": replace(
        _EXPRESSIONS,
        name="expressions-ar",
        description="Arithmetic expressions, autoregressive decoder (argmax fed back; "
        "teacher-forced): the contrast to the smooth flagship.",
        decoder={**_EXPRESSIONS_DECODER, "feedback": "hard"},
        teacher_forcing=True,
        word_dropout=0.1,
        config=replace(_EXPRESSIONS_CONFIG, epochs=4),
    ),
    "molecules": SequenceRecipe(
        name="molecules",
        task="molecules",
        description="Drug-like molecules as SMILES (MOSES training set); RDKit validity.",
        render="molecule",
        tokenizer="smiles",
        vocab=SMILES_VOCAB,
        seq_len=60,
        latent_dim=56,
        # One GRU layer of 256 reading the latent and the previous token: a third of the
        # per-step work of the earlier three layers of 192, so slices stay browsable.
        decoder={
            "hidden": 256,
            "layers": 1,
            "embed": 64,
            "cell": "gru",
            "dropout": 0.0,
            "feedback": "hard",
        },
        # A convolutional encoder: on expressions it learnt twice as fast per step as a
        # bidirectional GRU, and a bidirectional GRU of 256 over 60 tokens cost more than the
        # decoder here (2.4 s against 1.0 s a step of 128 under load).
        encoder={"channels": [32, 64, 64], "kernels": [5, 5, 5], "hidden": 256},
        encoder_architecture="conv_sequence_encoder",
        architecture="softmax_input_rnn",
        teacher_forcing=True,
        word_dropout=0.1,
        # About 18 minutes an epoch on one core here (0.55 s a step of 128): close to a
        # session's length, so it saves its state as it goes and resumes
        # (scales-viz train molecules --resume).
        config=TrainConfig(
            seed=0,
            epochs=6,
            batch_size=128,
            learning_rate=1e-3,
            final_learning_rate=1e-4,
            kl_warmup_epochs=0.5,
            beta=0.01,
            free_bits=0.05,
            grad_clip=5.0,
            log_every=250,
        ),
        n_train=245_000,
        n_held_out=5_000,
        n_reference=4_000,
        dataset={
            "source": "MOSES train split, molsets==0.3.1 wheel, "
            "moses/dataset/data/train.csv.gz (1,584,663 SMILES); a seeded subset, held-out "
            "molecules drawn from the same split (the test splits are never read)",
            "max_tokens_in_source": 57,
        },
        load=_molecules,
    ),
    "digits-2d": DigitsRecipe(
        name="digits-2d",
        description="scikit-learn 8x8 digits, Bernoulli VAE with a 2-D latent (teaching).",
        latent_dim=2,
        hidden=128,
        config=TrainConfig(
            seed=0, epochs=400, batch_size=64, learning_rate=2e-3, kl_warmup_epochs=100
        ),
    ),
    "digits": DigitsRecipe(
        name="digits",
        description="scikit-learn 8x8 digits, Bernoulli VAE with an 8-D latent.",
        latent_dim=8,
        hidden=128,
        config=TrainConfig(
            seed=0, epochs=400, batch_size=64, learning_rate=2e-3, kl_warmup_epochs=100
        ),
    ),
}

#: The smooth contrast to the shipped molecules model (issue 16): the same sizes, trained and
#: decoded feeding back its own softmax (no teacher forcing, no argmax), so that the map
#: z -> logits is smooth. Measured beside the shipped model on its card; a shorter run (two
#: epochs), because without teacher forcing it learns far more slowly per step.
_MOLECULES = RECIPES["molecules"]
assert isinstance(_MOLECULES, SequenceRecipe)
RECIPES["molecules-smooth"] = replace(
    _MOLECULES,
    name="molecules-smooth",
    description="Drug-like molecules as SMILES, smooth decoder (softmax fed back): the "
    "contrast to the autoregressive molecules model.",
    decoder={**_MOLECULES.decoder, "feedback": "soft"},
    teacher_forcing=False,
    word_dropout=0.0,
    config=replace(_MOLECULES.config, epochs=2),
)


def _split(texts: Sequence[str], recipe: SequenceRecipe, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle (seeded), keep those that fit `L`, then (held-out, train)."""
    tokenize = TOKENIZERS[recipe.tokenizer]
    fitting = [t for t in texts if len(tokenize(t)) <= recipe.seq_len]
    order = list(range(len(fitting)))
    random.Random(seed).shuffle(order)
    needed = recipe.n_held_out + recipe.n_train
    if len(order) < needed:
        raise InputValueError(
            f"{recipe.name}: {len(order)} usable examples; the recipe needs {needed}."
        )
    chosen = [fitting[i] for i in order[:needed]]
    return chosen[: recipe.n_held_out], chosen[recipe.n_held_out :]


_VALIDITY: dict[str, Callable[[str], bool]] = {
    "expressions": is_valid_expression,
    "molecules": is_valid_smiles,
}


def _sequence_metrics(
    encoder: nn.Module,
    decoder: nn.Module,
    codec: SequenceCodec,
    tokens: Tensor,
    is_valid: Callable[[str], bool],
) -> dict[str, float]:
    """Reconstruction from the encoder mean (greedy decoding): token and whole-sequence
    accuracy, cross-entropy per sequence, and the share of decodings that are valid."""
    correct_tokens = correct_seqs = valid = 0
    cross_entropy = 0.0
    for batch in tokens.split(1000):
        mu, _ = encoder(codec.one_hot(batch))
        logits = decoder(mu)
        decoded = logits.argmax(-1)
        hits = decoded == batch
        correct_tokens += int(hits.sum())
        correct_seqs += int(hits.all(-1).sum())
        valid += sum(is_valid(text) for text in codec.to_texts(decoded))
        cross_entropy += float(
            nn.functional.cross_entropy(logits.transpose(1, 2), batch, reduction="sum")
        )
    n = tokens.shape[0]
    return {
        "token_accuracy": round(correct_tokens / tokens.numel(), 4),
        "sequence_accuracy": round(correct_seqs / n, 4),
        "decoded_valid": round(valid / n, 4),
        "recon_ce_per_sequence": round(cross_entropy / n, 4),
    }


def _teacher_forcing(word_dropout: float) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    def decode(decoder: nn.Module, z: Tensor, targets: Tensor) -> Tensor:
        if not isinstance(decoder, SoftmaxInputRNNDecoder):
            raise InputValueError(
                f"teacher forcing needs a SoftmaxInputRNNDecoder; got {type(decoder).__name__}."
            )
        return decoder.forward_teacher(z, targets, word_dropout)

    return decode


def _sequence_recon(logits: Tensor, targets: Tensor) -> Tensor:
    return nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none").sum(-1)


def train_sequence(
    recipe: SequenceRecipe,
    seed: int,
    out: Path,
    data_dir: Path,
    checkpointing: Checkpointing | None = None,
) -> dict[str, Any]:
    """Train a sequence VAE and write its model directory; returns the manifest.

    With `checkpointing`, the run saves its state as it goes and (with ``resume``) continues
    from it; when its time budget stops it early, the model directory is still written, from
    the weights so far, and its log says so (``"finished": 0.0`` in the last record).
    """
    config = replace(recipe.config, seed=seed)
    codec = SequenceCodec(recipe.vocab, recipe.seq_len, TOKENIZERS[recipe.tokenizer])
    held_texts, train_texts = _split(recipe.load(seed, data_dir), recipe, seed)
    train_tokens = codec.to_indices(train_texts)
    held_tokens = codec.to_indices(held_texts)
    is_valid = _VALIDITY[recipe.task]
    sizes = {"latent_dim": recipe.latent_dim, "seq_len": recipe.seq_len}
    decoder_params = {**sizes, "vocab_size": codec.vocab_size, **recipe.decoder}
    encoder_params = {**sizes, "vocab_size": codec.vocab_size, **recipe.encoder}
    with seeded(seed, config.threads):
        decoder = ARCHITECTURES[recipe.architecture](**decoder_params)
        encoder = ARCHITECTURES[recipe.encoder_architecture](**encoder_params)
        monitor = held_tokens[:EPOCH_EVAL_SIZE]
        history = train_vae(
            encoder,
            decoder,
            train_tokens,
            train_tokens,
            config=config,
            to_encoder=codec.one_hot,
            recon_loss=_sequence_recon,
            prior_scale=recipe.prior_scale,
            train_decode=_teacher_forcing(recipe.word_dropout) if recipe.teacher_forcing else None,
            on_epoch=lambda _: {
                f"held_{k}": v
                for k, v in _sequence_metrics(encoder, decoder, codec, monitor, is_valid).items()
            },
            checkpointing=checkpointing,
        )
        seconds = history[-1]["seconds"] if history else 0.0
        with torch.no_grad():
            metrics = {
                "held_out": _sequence_metrics(encoder, decoder, codec, held_tokens, is_valid),
                "train_subset": _sequence_metrics(
                    encoder, decoder, codec, train_tokens[: recipe.n_held_out], is_valid
                ),
            }
            reference = held_tokens[: recipe.n_reference]
            latents = torch.cat([encoder(codec.one_hot(b))[0] for b in reference.split(1000)])
    out.mkdir(parents=True, exist_ok=True)
    reference_sha = save_tensors(
        out / "reference.safetensors",
        {"latents": latents.float(), "tokens": reference.to(torch.uint8)},
    )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": recipe.name,
        "task": recipe.task,
        "description": recipe.description,
        "latent_dim": recipe.latent_dim,
        "prior_scale": recipe.prior_scale,
        "likelihood": "categorical",
        "render": recipe.render,
        "data": {
            "kind": "sequence",
            "vocabulary": list(recipe.vocab),
            "seq_len": recipe.seq_len,
            "tokenizer": recipe.tokenizer,
        },
        "decoder": _save_module(out, "decoder", recipe.architecture, decoder_params, decoder),
        "encoder": _save_module(
            out, "encoder", recipe.encoder_architecture, encoder_params, encoder
        ),
        "reference": {
            "file": "reference.safetensors",
            "sha256": reference_sha,
            "count": int(reference.shape[0]),
            "what": "encoder means of the first held-out examples, with their tokens",
        },
        "dataset": {**recipe.dataset, "n_train": len(train_texts), "n_held_out": len(held_texts)},
        "training": {
            **_provenance(seconds, config),
            "teacher_forcing": recipe.teacher_forcing,
            "word_dropout": recipe.word_dropout,
            "steps_done": int(history[-1]["step"]) if history else 0,
            "finished": bool(history[-1].get("finished", 1.0)) if history else False,
        },
        "metrics": metrics,
    }
    _write_json(out / MANIFEST_FILE, manifest)
    _write_json(out / "training_log.json", history)
    return manifest


def train_builtin(
    name: str,
    *,
    seed: int,
    out: Path,
    data_dir: Path,
    checkpointing: Checkpointing | None = None,
) -> dict[str, Any]:
    """Re-run the training of built-in model `name` with `seed`; write it to `out`.

    Deterministic on the CPU for a seed (and the recipe's thread count), resumed or not.
    `checkpointing` applies to the sequence models (the digits models train in a minute).

    Raises:
        InputValueError: `name` is not a built-in model.
    """
    recipe = RECIPES.get(name)
    if recipe is None:
        raise InputValueError(f"no built-in model {name!r}; choose one of {sorted(RECIPES)}.")
    if isinstance(recipe, SequenceRecipe):
        return train_sequence(recipe, seed, out, data_dir, checkpointing)
    return train_digits(recipe, seed, out)


def _digits_data(recipe: DigitsRecipe, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Pixels `n x 64` in [0, 1], labels `n`, and a seeded held-out mask `n`."""
    bunch = load_digits()
    pixels = torch.as_tensor(bunch.data, dtype=torch.float32) / DIGIT_PIXEL_MAX
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    held = torch.zeros(len(labels), dtype=torch.bool)
    held[torch.as_tensor(order[: round(recipe.held_out_fraction * len(labels))])] = True
    return pixels, labels, held


def _train_classifier(
    recipe: DigitsRecipe, pixels: Tensor, labels: Tensor, params: dict[str, Any]
) -> tuple[nn.Module, list[float]]:
    """Full-batch Adam on cross-entropy; returns the classifier and its loss per epoch."""
    classifier = ARCHITECTURES["mlp_classifier"](**params)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=recipe.config.learning_rate)
    losses = []
    classifier.train()
    for _ in range(recipe.classifier_epochs):
        loss = nn.functional.cross_entropy(classifier(pixels), labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(round(float(loss.detach()), 5))
    return classifier.eval(), losses


def _bernoulli_recon(logits: Tensor, targets: Tensor) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)


@torch.no_grad()
def _digits_metrics(
    encoder: nn.Module,
    decoder: nn.Module,
    classifier: nn.Module,
    pixels: Tensor,
    labels: Tensor,
    samples: int,
) -> dict[str, float]:
    """ELBO terms (MC over `samples` posterior draws) and reconstruction accuracy."""
    mu, sigma = encoder(pixels)
    bce = torch.zeros(pixels.shape[0])
    for _ in range(samples):
        bce += _bernoulli_recon(decoder(mu + sigma * torch.randn_like(mu)), pixels)
    kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1 - 2 * sigma.log()).sum(-1)
    recon = torch.sigmoid(decoder(mu))
    probs = torch.softmax(classifier(recon), -1)
    return {
        "elbo": round(-float((bce / samples + kl).mean()), 3),
        "bce": round(float((bce / samples).mean()), 3),
        "kl": round(float(kl.mean()), 3),
        "pixel_mae": round(float((recon - pixels).abs().mean()), 4),
        "reconstruction_accuracy": round(float((probs.argmax(-1) == labels).float().mean()), 4),
        "reconstruction_valid_rate": round(float((probs.max(-1).values >= 0.9).float().mean()), 4),
    }


def train_digits(recipe: DigitsRecipe, seed: int, out: Path) -> dict[str, Any]:
    """Train the digits classifier and VAE; write the model directory; return the manifest."""
    config = replace(recipe.config, seed=seed)
    pixels, labels, held = _digits_data(recipe, seed)
    train_x, train_y, held_x, held_y = pixels[~held], labels[~held], pixels[held], labels[held]
    classifier_params = {"inputs": 64, "classes": DIGIT_CLASSES, "hidden": recipe.classifier_hidden}
    encoder_params = {"inputs": 64, "latent_dim": recipe.latent_dim, "hidden": recipe.hidden}
    decoder_params = {"latent_dim": recipe.latent_dim, "pixels": 64, "hidden": recipe.hidden}
    with seeded(seed, config.threads):
        classifier, classifier_losses = _train_classifier(
            recipe, train_x, train_y, classifier_params
        )
        with torch.no_grad():
            held_probs = torch.softmax(classifier(held_x), -1)
        classifier_metrics = {
            "held_out_accuracy": round(float((held_probs.argmax(-1) == held_y).float().mean()), 4),
            "held_out_valid_rate": round(
                float((held_probs.max(-1).values >= 0.9).float().mean()), 4
            ),
            "final_train_loss": classifier_losses[-1],
        }
        encoder = ARCHITECTURES["mlp_encoder"](**encoder_params)
        decoder = ARCHITECTURES["bernoulli_mlp"](**decoder_params)
        history = train_vae(
            encoder,
            decoder,
            train_x,
            train_x,
            config=config,
            to_encoder=lambda x: x,
            recon_loss=_bernoulli_recon,
            prior_scale=recipe.prior_scale,
            on_epoch=lambda _: {
                "held_elbo": _digits_metrics(encoder, decoder, classifier, held_x, held_y, 1)[
                    "elbo"
                ]
            },
        )
        metrics = {
            "held_out": _digits_metrics(encoder, decoder, classifier, held_x, held_y, 32),
            "train": _digits_metrics(encoder, decoder, classifier, train_x, train_y, 32),
            "classifier": classifier_metrics,
            "held_out_bce_mean_image_baseline": round(
                float(
                    _bernoulli_recon(
                        torch.logit(train_x.mean(0).clamp(1e-6, 1 - 1e-6)).expand_as(held_x), held_x
                    ).mean()
                ),
                3,
            ),
            "held_out_bce_floor_target_entropy": round(
                float(_bernoulli_recon(torch.logit(held_x.clamp(1e-6, 1 - 1e-6)), held_x).mean()), 3
            ),
        }
        with torch.no_grad():
            latents = encoder(pixels)[0]
    out.mkdir(parents=True, exist_ok=True)
    reference_sha = save_tensors(
        out / "reference.safetensors",
        {
            "latents": latents.float(),
            "pixels": (pixels * DIGIT_PIXEL_MAX).round().to(torch.uint8),
            "labels": labels.to(torch.uint8),
            "held_out": held.to(torch.uint8),
        },
    )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": recipe.name,
        "task": "digits",
        "description": recipe.description,
        "latent_dim": recipe.latent_dim,
        "prior_scale": recipe.prior_scale,
        "likelihood": "bernoulli",
        "render": "image",
        "data": {"kind": "image", "shape": [8, 8]},
        "decoder": _save_module(out, "decoder", "bernoulli_mlp", decoder_params, decoder),
        "encoder": _save_module(out, "encoder", "mlp_encoder", encoder_params, encoder),
        "classifier": _save_module(
            out, "classifier", "mlp_classifier", classifier_params, classifier
        ),
        "reference": {
            "file": "reference.safetensors",
            "sha256": reference_sha,
            "count": int(latents.shape[0]),
            "what": "encoder means of all 1797 digits, with pixels (0..16), labels and the "
            "held-out mask",
        },
        "dataset": {
            "source": "sklearn.datasets.load_digits (8x8, 1797 images), pixels / 16 as soft "
            "Bernoulli targets",
            "n_train": int((~held).sum()),
            "n_held_out": int(held.sum()),
        },
        "training": _provenance(float(history[-1]["seconds"]), config),
        "metrics": metrics,
    }
    _write_json(out / MANIFEST_FILE, manifest)
    _write_json(out / "training_log.json", history)
    return manifest
