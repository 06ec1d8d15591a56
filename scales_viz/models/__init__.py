"""Latent models: decoder architectures (and, later, the built-in models and loaders)."""

from __future__ import annotations

from scales_viz.models.decoders import (
    BernoulliMLPDecoder,
    MLPDecoder,
    SoftmaxFeedbackRNNDecoder,
    TransformerLatentDecoder,
)

__all__ = [
    "BernoulliMLPDecoder",
    "MLPDecoder",
    "SoftmaxFeedbackRNNDecoder",
    "TransformerLatentDecoder",
]
