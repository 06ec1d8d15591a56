"""scales-viz: ScaLES scores, latent-space views and optimiser comparisons for VAE decoders."""

from __future__ import annotations

from scales_viz.errors import DecoderError, InputTypeError, InputValueError, ScalesVizError
from scales_viz.score import distance_to_data, likelihood, prior_logpdf, scales

__version__ = "0.1.0"

__all__ = [
    "DecoderError",
    "InputTypeError",
    "InputValueError",
    "ScalesVizError",
    "__version__",
    "distance_to_data",
    "likelihood",
    "prior_logpdf",
    "scales",
]
