"""Factories for the python:module:factory model spec tests."""

from __future__ import annotations

from scales_viz.models import VAEModel, load_model


def digits_copy() -> VAEModel:
    model = load_model("digits-2d")
    model.name = "my-digits"
    return model


def not_a_model() -> str:
    return "nope"
