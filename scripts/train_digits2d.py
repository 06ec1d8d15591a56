"""Train the bundled digits-2d model: a Bernoulli VAE with a 2-D latent on sklearn's 8x8 digits.

Data: ``sklearn.datasets.load_digits`` (1797 images), pixels divided by 16 into [0, 1] and used
as (soft) Bernoulli targets. A seeded 15% of the images is held out.

Model: encoder MLP 64 -> 128 -> 128 -> (mu, logvar) with SiLU; decoder
``BernoulliMLPDecoder(2, 64, hidden=128)``; prior N(0, I). Adam on the negative ELBO with the
KL term annealed linearly from 0 to 1 over the first part of training.

Writes ``assets/digits-2d/{decoder,encoder}.safetensors`` and ``metrics.json``. ELBO and BCE
values are nats per image (summed over the 64 pixels). Because the targets are grey levels, a
perfect reconstruction still has a BCE equal to the targets' own entropy; ``metrics.json``
reports that floor and the BCE of always predicting the training-set mean image, to judge the
reconstruction against.

Usage::

    python scripts/train_digits2d.py [--seed 0] [--epochs 400] [--threads 1]
                                     [--out assets/digits-2d]
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from torch import Tensor, nn

from scales_viz.models import BernoulliMLPDecoder
from scales_viz.models.bundled import (
    DIGITS2D_DIR,
    DIGITS2D_HIDDEN,
    DIGITS2D_LATENT_DIM,
    DIGITS2D_PIXELS,
)

LOG = logging.getLogger("train_digits2d")

DEFAULT_OUT = DIGITS2D_DIR
LATENT_DIM = DIGITS2D_LATENT_DIM
PIXELS = DIGITS2D_PIXELS
HIDDEN = DIGITS2D_HIDDEN
PIXEL_MAX = 16.0
HELD_OUT_FRACTION = 0.15
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
KL_WARMUP_FRACTION = 0.25
# Clamp keeps exp(logvar) finite early in training; it never binds once the encoder settles.
LOGVAR_RANGE = (-12.0, 6.0)
EVAL_SAMPLES = 32
PRIOR_SCALE = 1.0


class DigitsEncoder(nn.Module):
    """MLP encoder `x` (`n x 64`, in [0, 1]) -> `(mu, logvar)`, each `n x d`."""

    def __init__(self, pixels: int, latent_dim: int, *, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(pixels, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
        )
        self.head = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`x`: `n x P` -> `(mu, logvar)`, each `n x d`."""
        mu, logvar = self.head(self.net(x)).chunk(2, dim=-1)
        return mu, logvar.clamp(*LOGVAR_RANGE)


@dataclass(frozen=True)
class Terms:
    """Per-image averages (nats) of the reconstruction BCE and the KL to the prior."""

    bce: float
    kl: float

    @property
    def elbo(self) -> float:
        """Evidence lower bound per image."""
        return -(self.bce + self.kl)


def kl_to_prior(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, `n`."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def bce_per_image(logits: Tensor, x: Tensor) -> Tensor:
    """Bernoulli negative log-likelihood summed over pixels, `n`."""
    return nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def load_data(seed: int) -> tuple[Tensor, Tensor]:
    """The digits as `n x 64` float32 in [0, 1], split into (train, held-out) by `seed`."""
    x = torch.as_tensor(load_digits().data, dtype=torch.float32) / PIXEL_MAX
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=gen)
    n_held = round(HELD_OUT_FRACTION * x.shape[0])
    return x[perm[n_held:]], x[perm[:n_held]]


@torch.no_grad()
def evaluate(
    encoder: DigitsEncoder, decoder: nn.Module, x: Tensor, gen: torch.Generator, samples: int
) -> Terms:
    """Monte Carlo ELBO terms on `x` with `samples` posterior draws per image."""
    encoder.eval()
    decoder.eval()
    mu, logvar = encoder(x)
    std = (0.5 * logvar).exp()
    bce = torch.zeros(x.shape[0])
    for _ in range(samples):
        z = mu + std * torch.randn(mu.shape, generator=gen)
        bce += bce_per_image(decoder(z), x)
    return Terms(bce=float(bce.mean()) / samples, kl=float(kl_to_prior(mu, logvar).mean()))


@torch.no_grad()
def reference_bces(train: Tensor, held: Tensor) -> dict[str, float]:
    """Held-out BCE of predicting the training mean image, and of the targets themselves."""
    mean_image = train.mean(dim=0).clamp(1e-6, 1 - 1e-6)
    mean_logits = torch.logit(mean_image).expand_as(held)
    entropy = nn.functional.binary_cross_entropy(held, held, reduction="none").sum(-1)
    return {
        "held_out_bce_mean_image_baseline": float(bce_per_image(mean_logits, held).mean()),
        "held_out_bce_floor_target_entropy": float(entropy.mean()),
    }


def train_epoch(
    encoder: DigitsEncoder,
    decoder: nn.Module,
    optimiser: torch.optim.Optimizer,
    train: Tensor,
    beta: float,
    gen: torch.Generator,
) -> Terms:
    """One pass over `train` in shuffled minibatches; returns the epoch's average terms."""
    encoder.train()
    decoder.train()
    total_bce = total_kl = 0.0
    for idx in torch.randperm(train.shape[0], generator=gen).split(BATCH_SIZE):
        x = train[idx]
        mu, logvar = encoder(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=gen)
        bce = bce_per_image(decoder(z), x)
        kl = kl_to_prior(mu, logvar)
        loss = (bce + beta * kl).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total_bce += float(bce.detach().sum())
        total_kl += float(kl.detach().sum())
    return Terms(bce=total_bce / train.shape[0], kl=total_kl / train.shape[0])


def kl_weight(epoch: int, epochs: int) -> float:
    """Linear KL annealing: 0 at the first epoch, 1 from `KL_WARMUP_FRACTION` of the run on."""
    warmup = max(1, round(KL_WARMUP_FRACTION * epochs))
    return min(1.0, epoch / warmup)


def fit(seed: int, epochs: int) -> tuple[DigitsEncoder, nn.Module, dict[str, object]]:
    """Train from `seed`; returns the modules and the metrics to write."""
    torch.manual_seed(seed)  # initial weights; all other draws use explicit generators
    train, held = load_data(seed)
    encoder = DigitsEncoder(PIXELS, LATENT_DIM, hidden=HIDDEN)
    decoder = BernoulliMLPDecoder(LATENT_DIM, PIXELS, hidden=HIDDEN)
    params = [*encoder.parameters(), *decoder.parameters()]
    optimiser = torch.optim.Adam(params, lr=LEARNING_RATE)
    train_gen = torch.Generator().manual_seed(seed + 1)
    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        beta = kl_weight(epoch, epochs)
        terms = train_epoch(encoder, decoder, optimiser, train, beta, train_gen)
        held_terms = evaluate(encoder, decoder, held, torch.Generator().manual_seed(seed), 1)
        history.append(
            {
                "epoch": epoch + 1,
                "beta": round(beta, 4),
                "train_bce": round(terms.bce, 3),
                "train_kl": round(terms.kl, 3),
                "held_out_elbo": round(held_terms.elbo, 3),
            }
        )
        LOG.info(
            "epoch %4d  beta %.3f  train bce %7.3f kl %6.3f  held-out elbo %8.3f",
            epoch + 1,
            beta,
            terms.bce,
            terms.kl,
            held_terms.elbo,
        )
    seconds = time.perf_counter() - start
    eval_gen = torch.Generator().manual_seed(seed + 2)
    final_train = evaluate(encoder, decoder, train, eval_gen, EVAL_SAMPLES)
    final_held = evaluate(encoder, decoder, held, eval_gen, EVAL_SAMPLES)
    metrics: dict[str, object] = {
        "model": "digits-2d",
        "seed": seed,
        "epochs": epochs,
        "latent_dim": LATENT_DIM,
        "prior_scale": PRIOR_SCALE,
        "decoder": f"BernoulliMLPDecoder({LATENT_DIM}, {PIXELS}, hidden={HIDDEN})",
        "n_train": train.shape[0],
        "n_held_out": held.shape[0],
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "kl_warmup_epochs": max(1, round(KL_WARMUP_FRACTION * epochs)),
        "eval_posterior_samples": EVAL_SAMPLES,
        "train_elbo": round(final_train.elbo, 3),
        "held_out_elbo": round(final_held.elbo, 3),
        "train_bce": round(final_train.bce, 3),
        "held_out_bce": round(final_held.bce, 3),
        "held_out_kl": round(final_held.kl, 3),
        **{key: round(value, 3) for key, value in reference_bces(train, held).items()},
        "train_seconds": round(seconds, 1),
        "torch_version": torch.__version__,
        "command": shlex.join(["python", *sys.argv]),
        "history": history,
    }
    return encoder, decoder, metrics


def save(out: Path, encoder: nn.Module, decoder: nn.Module, metrics: dict[str, object]) -> None:
    """Write the two state dicts (safetensors) and `metrics.json` into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    # No safetensors metadata: its key order is not stable, and the files should be
    # byte-identical across reruns with the same seed. metrics.json describes the model.
    for name, module in (("decoder", decoder), ("encoder", encoder)):
        state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
        save_file(state, out / f"{name}.safetensors")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, train, write the assets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args(argv)
    # The model is tiny: with more threads, synchronisation costs more than the arithmetic
    # (30x slower per epoch on a busy 2-core machine).
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    encoder, decoder, metrics = fit(args.seed, args.epochs)
    save(args.out, encoder, decoder, metrics)
    summary = {k: v for k, v in metrics.items() if k != "history"}
    LOG.info("wrote %s\n%s", args.out, json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
