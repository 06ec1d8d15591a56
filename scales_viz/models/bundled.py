"""Loaders for the models shipped in the repository's ``assets/`` folder.

digits-2d: a Bernoulli VAE with a 2-D latent and prior N(0, I) on scikit-learn's 8x8 digits,
trained by ``scripts/train_digits2d.py``. Weights are read with safetensors (never pickle).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from scales_viz.models.decoders import BernoulliMLPDecoder

__all__ = [
    "ASSETS_DIR",
    "DIGITS2D_DIR",
    "DIGITS2D_HIDDEN",
    "DIGITS2D_LATENT_DIM",
    "DIGITS2D_PIXELS",
    "load_digits2d_decoder",
    "load_digits2d_metrics",
]

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
DIGITS2D_DIR = ASSETS_DIR / "digits-2d"
DIGITS2D_LATENT_DIM = 2
DIGITS2D_PIXELS = 64
DIGITS2D_HIDDEN = 128
_DIGITS2D_SCRIPT = "scripts/train_digits2d.py"


def _digits2d_file(name: str) -> Path:
    path = DIGITS2D_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"the digits-2d model file {path} is missing. Create it by running "
            f"`python {_DIGITS2D_SCRIPT}` from the repository root."
        )
    return path


def load_digits2d_decoder() -> BernoulliMLPDecoder:
    """The bundled digits-2d decoder, in eval mode on the CPU (float32).

    It maps `z` (`n x 2`) to Bernoulli pixel logits `n x 64` (8x8 images, row-major); use it
    with ``likelihood="bernoulli"``. The prior it was trained with is N(0, I).

    Returns:
        A new :class:`BernoulliMLPDecoder` holding the trained weights.

    Raises:
        FileNotFoundError: ``assets/digits-2d/decoder.safetensors`` does not exist.
    """
    decoder = BernoulliMLPDecoder(DIGITS2D_LATENT_DIM, DIGITS2D_PIXELS, hidden=DIGITS2D_HIDDEN)
    decoder.load_state_dict(load_file(_digits2d_file("decoder.safetensors")))
    return decoder.eval()


def load_digits2d_metrics() -> dict[str, object]:
    """The training record of the digits-2d model (``assets/digits-2d/metrics.json``).

    Returns:
        The parsed JSON: seed, epochs, train and held-out ELBO and held-out reconstruction
        BCE (nats per image), reference BCEs, torch version, the command that trained it and
        the per-epoch history.

    Raises:
        FileNotFoundError: the metrics file does not exist.
    """
    with _digits2d_file("metrics.json").open(encoding="utf-8") as handle:
        metrics: dict[str, object] = json.load(handle)
    return metrics
