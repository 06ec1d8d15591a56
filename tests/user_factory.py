"""Factories for the python:module:factory model spec tests."""

from __future__ import annotations

import torch

from scales_viz.models import VAEModel, load_model


def digits_copy() -> VAEModel:
    model = load_model("digits-2d")
    model.name = "my-digits"
    return model


def not_a_model() -> str:
    return "nope"


class _Broken(torch.nn.Module):
    """A decoder that keeps the original's parameters but raises on every call."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("decoder exploded (a deliberately broken test model)")


def broken_decoder() -> VAEModel:
    """digits-2d whose decoder raises on every call (for the fault tests)."""
    model = load_model("digits-2d")
    model.name = "broken_decoder"
    model.decoder = _Broken(model.decoder)
    return model
