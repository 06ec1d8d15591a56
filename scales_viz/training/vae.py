"""A seeded VAE training loop shared by the built-in models.

The loop draws every random number (initial weights, minibatch order, posterior noise,
dropout) inside :func:`torch.random.fork_rng` seeded from the config, so a run is
deterministic on the CPU for a seed and a thread count, and the caller's global random state
is left as it was.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from scales_viz.errors import InputValueError

__all__ = [
    "Checkpointing",
    "TrainConfig",
    "kl_to_prior",
    "kl_weight",
    "learning_rate",
    "seeded",
    "train_vae",
]

LOG = logging.getLogger(__name__)

#: Recon loss per example `n`, given logits and the batch's targets.
ReconLoss = Callable[[Tensor, Tensor], Tensor]
#: Turns a batch of stored inputs into what the encoder reads.
EncoderInput = Callable[[Tensor], Tensor]
#: Training-time decoding `(decoder, z, targets) -> logits` (for example teacher forcing).
TrainDecode = Callable[[nn.Module, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training run.

    Attributes:
        seed: seeds initial weights, batch order, posterior noise and dropout.
        epochs: passes over the training set.
        batch_size: examples per step.
        learning_rate: Adam's step size.
        kl_warmup_epochs: the KL weight rises linearly, step by step, from 0 to `beta` over
            this many epochs (fractions allowed).
        beta: the final KL weight (1 is the ELBO).
        grad_clip: global gradient-norm clip (0: none).
        threads: torch intra-op threads while training (results depend on it).
        log_every: also log a record every this many steps (0: once per epoch only).
        free_bits: nats per latent dimension below which the batch-mean KL of that dimension
            is not penalised (Kingma et al., 2016); 0: the plain KL.
        final_learning_rate: cosine decay of the step size to this value over all the steps
            (None: constant).
    """

    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    kl_warmup_epochs: float
    beta: float = 1.0
    grad_clip: float = 0.0
    threads: int = 1
    log_every: int = 0
    free_bits: float = 0.0
    final_learning_rate: float | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain dict for the manifest."""
        return asdict(self)


@contextmanager
def seeded(seed: int, threads: int) -> Iterator[None]:
    """Run the block with torch's global RNG seeded and `threads` threads; restore both."""
    previous_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous_threads)


def kl_to_prior(mu: Tensor, sigma: Tensor, prior_scale: float = 1.0) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, prior_scale^2 I)) per row, `n`."""
    ratio = (sigma / prior_scale).pow(2)
    return 0.5 * ((mu / prior_scale).pow(2) + ratio - 1.0 - ratio.log()).sum(dim=-1)


def kl_per_dim(mu: Tensor, sigma: Tensor, prior_scale: float = 1.0) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, prior_scale^2)) per row and dimension, `n x d`."""
    ratio = (sigma / prior_scale).pow(2)
    return 0.5 * ((mu / prior_scale).pow(2) + ratio - 1.0 - ratio.log())


def learning_rate(step: int, total: int, config: TrainConfig) -> float:
    """Adam's step size at `step` of `total`: constant, or cosine-decayed to the final one."""
    if config.final_learning_rate is None or total <= 0:
        return config.learning_rate
    progress = min(1.0, step / total)
    low = config.final_learning_rate
    return low + 0.5 * (config.learning_rate - low) * (1.0 + math.cos(math.pi * progress))


def kl_weight(progress: float, config: TrainConfig) -> float:
    """KL weight after `progress` epochs (fractional): linear warm-up to `beta`."""
    if config.kl_warmup_epochs <= 0:
        return config.beta
    return config.beta * min(1.0, progress / config.kl_warmup_epochs)


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often a run saves everything it needs to continue.

    The state holds the modules, the optimiser, the step, the current epoch's batch order,
    torch's RNG state and the log (:func:`save_checkpoint`: pieces of at most 7 MiB and an
    index), read back with ``torch.load(..., weights_only=True)``.

    Attributes:
        path: the checkpoint's index file; its pieces lie beside it (each written
            atomically: a temporary file, then a rename; the index last).
        every: save after this many steps (and when the run ends or stops).
        resume: continue from `path` when it exists.
        max_seconds: stop (and save) after this much training time in this call (None: run
            to the end).
    """

    path: Path
    every: int = 1000
    resume: bool = False
    max_seconds: float | None = None


def _step(
    encoder: nn.Module,
    decoder: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    to_encoder: EncoderInput,
    recon_loss: ReconLoss,
    prior_scale: float,
    train_decode: TrainDecode | None,
    free_bits: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Reconstruction loss and KL per example, and the KL term of the loss (free bits)."""
    mu, sigma = encoder(to_encoder(inputs))
    z = mu + sigma * torch.randn_like(mu)
    logits = decoder(z) if train_decode is None else train_decode(decoder, z, targets)
    kl = kl_per_dim(mu, sigma, prior_scale)
    penalised = kl.mean(0).clamp(min=free_bits).sum() if free_bits > 0 else kl.sum(-1).mean()
    return recon_loss(logits, targets), kl.sum(-1), penalised


#: Largest piece of a saved training state: a state is split so that each file stays small
#: enough to commit (the molecules state is about 18 MB).
CHECKPOINT_PART_BYTES = 7 << 20
_CHECKPOINT_FORMAT = "scales-viz-checkpoint-parts"


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def save_checkpoint(path: Path, state: dict[str, object]) -> None:
    """Save a training state as pieces ``PATH.000, PATH.001, ...`` (each at most
    :data:`CHECKPOINT_PART_BYTES`) and, last, ``PATH``: a small JSON index of the pieces with
    their sizes and SHA-256 (so a half-written or altered state is refused, not resumed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    parts = []
    for i, start in enumerate(range(0, len(data), CHECKPOINT_PART_BYTES)):
        piece = data[start : start + CHECKPOINT_PART_BYTES]
        name = f"{path.name}.{i:03d}"
        _write_atomic(path.with_name(name), piece)
        parts.append(
            {"file": name, "bytes": len(piece), "sha256": hashlib.sha256(piece).hexdigest()}
        )
    for stale in path.parent.glob(f"{glob.escape(path.name)}.[0-9][0-9][0-9]"):
        if stale.name not in {p["file"] for p in parts}:
            stale.unlink()
    index = {"format": _CHECKPOINT_FORMAT, "parts": parts}
    _write_atomic(path, (json.dumps(index, indent=1) + "\n").encode())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a state written by :func:`save_checkpoint` (or a single ``torch.save`` file), with
    ``weights_only=True``; a missing, short or altered piece is an `InputValueError`."""
    raw = path.read_bytes()
    if raw[:2] == b"PK":  # one zip file: torch.save's own format
        return dict(torch.load(io.BytesIO(raw), weights_only=True))
    try:
        index = json.loads(raw)
        parts = index["parts"] if index.get("format") == _CHECKPOINT_FORMAT else None
    except (ValueError, AttributeError, KeyError):
        parts = None
    if not isinstance(parts, list):
        raise InputValueError(
            f"{path} is not a training state (expected torch.save's zip or an index of parts)."
        )
    chunks = []
    for part in parts:
        piece_path = path.with_name(Path(str(part["file"])).name)
        piece = piece_path.read_bytes() if piece_path.is_file() else b""
        if len(piece) != part["bytes"] or hashlib.sha256(piece).hexdigest() != part["sha256"]:
            raise InputValueError(
                f"{piece_path}: expected {part['bytes']} bytes with SHA-256 "
                f"{str(part['sha256'])[:12]}...; found {len(piece)} bytes that do not match. "
                "The training state is incomplete; start again without --resume."
            )
        chunks.append(piece)
    return dict(torch.load(io.BytesIO(b"".join(chunks)), weights_only=True))


def train_vae(
    encoder: nn.Module,
    decoder: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    config: TrainConfig,
    to_encoder: EncoderInput,
    recon_loss: ReconLoss,
    prior_scale: float = 1.0,
    on_epoch: Callable[[int], dict[str, float]] | None = None,
    train_decode: TrainDecode | None = None,
    checkpointing: Checkpointing | None = None,
) -> list[dict[str, float]]:
    """Train `encoder` and `decoder` in place on the negative ELBO with KL annealing.

    Call inside :func:`seeded` (after building the modules there, so their initial weights are
    seeded too). With `checkpointing`, the run saves itself every few steps and can continue
    where it left off, in the same order of batches and random draws as an uninterrupted run.

    Args:
        encoder: `to_encoder(inputs[idx])` -> `(mu, sigma)`.
        decoder: `z` -> logits.
        inputs: the training examples as stored (`n x ...`).
        targets: what `recon_loss` compares the logits with (`n x ...`).
        config: optimisation settings.
        to_encoder: maps a batch of `inputs` to the encoder's input.
        recon_loss: per-example reconstruction loss `n`.
        prior_scale: the std of the Gaussian prior.
        on_epoch: called after each epoch with its index; returns held-out metrics to log.
        train_decode: how the decoder produces logits while training (default `decoder(z)`);
            for example teacher forcing. Evaluation always uses `decoder(z)`.
        checkpointing: save (and resume) the run's state; stop early after a time budget.

    Returns:
        One record per epoch (and every `config.log_every` steps): epochs done, step, KL
        weight, step size, training reconstruction loss and KL per example since the previous
        record, seconds so far (over all resumed calls), and whatever `on_epoch` returned. The
        last record has ``"finished"`` 1.0 when every step was taken, 0.0 when the time budget
        stopped the run first.
    """
    params = [*encoder.parameters(), *decoder.parameters()]
    optimiser = torch.optim.Adam(params, lr=config.learning_rate)
    history: list[dict[str, float]] = []
    n = inputs.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = config.epochs * steps_per_epoch
    step = 0
    order: Tensor | None = None
    elapsed_before = 0.0
    if checkpointing is not None and checkpointing.resume and checkpointing.path.is_file():
        state = load_checkpoint(checkpointing.path)
        encoder.load_state_dict(state["encoder"])
        decoder.load_state_dict(state["decoder"])
        optimiser.load_state_dict(state["optimiser"])
        step = int(state["step"])
        order = state["order"]
        torch.set_rng_state(state["rng"])
        history = json.loads(state["history"])
        elapsed_before = float(state["seconds"])
        LOG.info("resumed from %s at step %d of %d", checkpointing.path, step, total)
    start = time.perf_counter()
    bar = tqdm(total=total, initial=step, desc="training", unit="step", leave=False)
    sums = [0.0, 0.0, 0]  # reconstruction, KL, examples since the last record

    def seconds() -> float:
        return elapsed_before + time.perf_counter() - start

    def record(epoch: int, *, finished: bool | None = None) -> None:
        encoder.eval()
        decoder.eval()
        entry = {
            "epoch": round(step / steps_per_epoch, 3),
            "step": float(step),
            "beta": round(kl_weight(step / steps_per_epoch, config), 4),
            "learning_rate": round(learning_rate(step, total, config), 7),
            "train_recon": round(sums[0] / max(sums[2], 1), 4),
            "train_kl": round(sums[1] / max(sums[2], 1), 4),
            "seconds": round(seconds(), 1),
        }
        if on_epoch is not None:
            with torch.no_grad():
                entry.update(on_epoch(epoch))
        if finished is not None:
            entry["finished"] = float(finished)
        history.append(entry)
        sums[:] = [0.0, 0.0, 0]
        LOG.info("  ".join(f"{key} {value:g}" for key, value in entry.items()))
        encoder.train()
        decoder.train()

    def save() -> None:
        if checkpointing is None:
            return
        save_checkpoint(
            checkpointing.path,
            {
                "encoder": encoder.state_dict(),
                "decoder": decoder.state_dict(),
                "optimiser": optimiser.state_dict(),
                "step": step,
                "order": order if order is not None else torch.empty(0, dtype=torch.int64),
                "rng": torch.get_rng_state(),
                "history": json.dumps(history),
                "seconds": seconds(),
            },
        )

    encoder.train()
    decoder.train()
    stopped = False
    while step < total and not stopped:
        epoch, offset = divmod(step, steps_per_epoch)
        if offset == 0 or order is None or order.numel() != n:
            order = torch.randperm(n)
        for idx in order.split(config.batch_size)[offset:]:
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(step, total, config)
            beta = kl_weight(step / steps_per_epoch, config)
            recon, kl, penalised = _step(
                encoder,
                decoder,
                inputs[idx],
                targets[idx],
                to_encoder,
                recon_loss,
                prior_scale,
                train_decode,
                config.free_bits,
            )
            loss = recon.mean() + beta * penalised
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimiser.step()
            sums[0] += float(recon.detach().sum())
            sums[1] += float(kl.detach().sum())
            sums[2] += len(idx)
            step += 1
            bar.update()
            end_of_epoch = step % steps_per_epoch == 0
            if config.log_every and step % config.log_every == 0 and not end_of_epoch:
                record(epoch)
            if end_of_epoch:
                record(epoch, finished=True if step == total else None)
            if checkpointing is not None:
                over = (
                    checkpointing.max_seconds is not None
                    and time.perf_counter() - start >= checkpointing.max_seconds
                )
                if over and step < total:
                    record(epoch, finished=False)
                    stopped = True
                if stopped or end_of_epoch or step % checkpointing.every == 0:
                    save()
                if stopped:
                    break
    if checkpointing is not None and not stopped:
        save()
    encoder.eval()
    decoder.eval()
    bar.close()
    return history
