"""Latent models: the protocol, the built-in models, their decoders, encoders and tasks."""

from __future__ import annotations

from scales_viz.models.base import (
    DecodesLogits,
    Encodes,
    EncodingModel,
    LatentModel,
    Objective,
    VAEModel,
)
from scales_viz.models.decoders import (
    BernoulliMLPDecoder,
    MLPDecoder,
    SoftmaxFeedbackRNNDecoder,
    SoftmaxInputRNNDecoder,
    TransformerLatentDecoder,
)
from scales_viz.models.encoders import ConvSequenceEncoder, GRUSequenceEncoder, MLPEncoder
from scales_viz.models.loading import ModelSpec, load_model, parse_spec
from scales_viz.models.manifest import ManifestError
from scales_viz.models.molecules import MissingExtraError
from scales_viz.models.registry import (
    DEFAULT_MODEL,
    ModelInfo,
    list_models,
    load_builtin,
    load_model_dir,
)

__all__ = [
    "DEFAULT_MODEL",
    "BernoulliMLPDecoder",
    "ConvSequenceEncoder",
    "DecodesLogits",
    "Encodes",
    "EncodingModel",
    "GRUSequenceEncoder",
    "LatentModel",
    "MLPDecoder",
    "MLPEncoder",
    "ManifestError",
    "MissingExtraError",
    "ModelInfo",
    "ModelSpec",
    "Objective",
    "SoftmaxFeedbackRNNDecoder",
    "SoftmaxInputRNNDecoder",
    "TransformerLatentDecoder",
    "VAEModel",
    "list_models",
    "load_builtin",
    "load_model",
    "load_model_dir",
    "parse_spec",
]
