"""A seeded VAE training loop shared by the built-in models.

The loop draws every random number (initial weights, minibatch order, posterior noise,
dropout) inside :func:`torch.random.fork_rng` seeded from the config, so a run is
deterministic on the CPU for a seed and a thread count, and the caller's global random state
is left as it was.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from tqdm import tqdm

__all__ = ["TrainConfig", "kl_to_prior", "kl_weight", "seeded", "train_vae"]

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


def kl_weight(progress: float, config: TrainConfig) -> float:
    """KL weight after `progress` epochs (fractional): linear warm-up to `beta`."""
    if config.kl_warmup_epochs <= 0:
        return config.beta
    return config.beta * min(1.0, progress / config.kl_warmup_epochs)


def _step(
    encoder: nn.Module,
    decoder: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    to_encoder: EncoderInput,
    recon_loss: ReconLoss,
    prior_scale: float,
    train_decode: TrainDecode | None,
) -> tuple[Tensor, Tensor]:
    """Reconstruction loss and KL per example for one batch (reparameterised sample)."""
    mu, sigma = encoder(to_encoder(inputs))
    z = mu + sigma * torch.randn_like(mu)
    logits = decoder(z) if train_decode is None else train_decode(decoder, z, targets)
    return recon_loss(logits, targets), kl_to_prior(mu, sigma, prior_scale)


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
) -> list[dict[str, float]]:
    """Train `encoder` and `decoder` in place on the negative ELBO with KL annealing.

    Call inside :func:`seeded` (after building the modules there, so their initial weights are
    seeded too).

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

    Returns:
        One record per epoch (and every `config.log_every` steps): epochs done, step, KL
        weight, training reconstruction loss and KL per example since the previous record,
        seconds so far, and whatever `on_epoch` returned.
    """
    params = [*encoder.parameters(), *decoder.parameters()]
    optimiser = torch.optim.Adam(params, lr=config.learning_rate)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    n = inputs.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    bar = tqdm(total=config.epochs * steps_per_epoch, desc="training", unit="step", leave=False)
    step = 0
    sums = [0.0, 0.0, 0]  # reconstruction, KL, examples since the last record

    def record(epoch: int) -> None:
        encoder.eval()
        decoder.eval()
        entry = {
            "epoch": round(step / steps_per_epoch, 3),
            "step": float(step),
            "beta": round(kl_weight(step / steps_per_epoch, config), 4),
            "train_recon": round(sums[0] / max(sums[2], 1), 4),
            "train_kl": round(sums[1] / max(sums[2], 1), 4),
            "seconds": round(time.perf_counter() - start, 1),
        }
        if on_epoch is not None:
            with torch.no_grad():
                entry.update(on_epoch(epoch))
        history.append(entry)
        sums[:] = [0.0, 0.0, 0]
        LOG.info("  ".join(f"{key} {value:g}" for key, value in entry.items()))
        encoder.train()
        decoder.train()

    encoder.train()
    decoder.train()
    for epoch in range(config.epochs):
        for idx in torch.randperm(n).split(config.batch_size):
            beta = kl_weight(step / steps_per_epoch, config)
            recon, kl = _step(
                encoder,
                decoder,
                inputs[idx],
                targets[idx],
                to_encoder,
                recon_loss,
                prior_scale,
                train_decode,
            )
            loss = (recon + beta * kl).mean()
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
            if config.log_every and step % config.log_every == 0 and step % steps_per_epoch:
                record(epoch)
        record(epoch)
    encoder.eval()
    decoder.eval()
    bar.close()
    return history
