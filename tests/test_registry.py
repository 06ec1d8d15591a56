"""The built-in models: listing, loading, decoding, round trips, validity and objectives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reference import reference_scales
from sklearn.datasets import load_digits

from scales_viz.errors import InputValueError
from scales_viz.models import (
    DecodesLogits,
    Encodes,
    EncodingModel,
    LatentModel,
    MissingExtraError,
    VAEModel,
    list_models,
    load_model,
    registry,
    tasks,
)
from scales_viz.models.expressions import TARGET_EXPRESSION

BUILTINS = ["expressions", "expressions-ar", "molecules", "digits-2d", "digits"]
DIGIT_MODELS = ["digits-2d", "digits"]
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
MAX_WEIGHTS_BYTES = 10 * 2**20
ROUND_TRIP_SAMPLE = 300


@pytest.fixture(scope="module", params=BUILTINS)
def model(request: pytest.FixtureRequest) -> VAEModel:
    return load_model(request.param)


def test_all_five_builtins_are_listed_and_available_flagship_first() -> None:
    infos = list_models()
    assert [info.name for info in infos] == BUILTINS
    assert registry.DEFAULT_MODEL == "expressions"
    assert all(info.available for info in infos)
    assert {info.name: info.latent_dim for info in infos} == {
        "digits-2d": 2,
        "digits": 8,
        "expressions": 25,
        "expressions-ar": 25,
        "molecules": 56,
    }


def test_each_builtin_model_is_at_most_10_mb() -> None:
    for info in list_models():
        size = sum(p.stat().st_size for p in registry.model_dir(info.name).iterdir())
        assert size <= MAX_WEIGHTS_BYTES, info.name


def test_model_follows_the_protocol(model: VAEModel) -> None:
    typed: EncodingModel = model  # mypy checks VAEModel against the protocols here
    assert isinstance(typed, LatentModel)
    assert isinstance(model, Encodes)
    assert isinstance(model, DecodesLogits)
    assert model.prior_scale > 0
    assert model.objectives
    assert model.render in ("text", "molecule", "image")


def test_decode_logits_shapes_and_dtype_follow_z(model: VAEModel) -> None:
    z = model.sample_prior(3, seed=0).double()
    logits = model.decode_logits(z)
    assert logits.dtype == torch.float64
    if model.likelihood == "categorical":
        assert logits.shape == (3, model.codec.seq_len, model.codec.vocab_size)  # type: ignore[union-attr]
    else:
        assert logits.shape == (3, 64)
    assert next(model.decoder.parameters()).dtype == torch.float32  # the original is untouched


def test_decode_logits_rejects_wrong_width(model: VAEModel) -> None:
    with pytest.raises(InputValueError, match=f"{model.latent_dim}"):
        model.decode_logits(torch.zeros(2, model.latent_dim + 1))


def test_reference_latents_are_the_encodings_of_the_reference_data(model: VAEModel) -> None:
    objects = model.data_objects[:50]
    torch.testing.assert_close(model.encode(objects), model.data_latents[:50], atol=1e-5, rtol=1e-5)


def test_scales_of_the_model_matches_the_float64_reference(model: VAEModel) -> None:
    z = torch.cat([model.data_latents[:1], model.sample_prior(1, seed=1)]).double()
    decoder = model.decoder_for(z)
    torch.testing.assert_close(
        model.scales(z), reference_scales(decoder, z, model.likelihood), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "name",
    ["expressions", "molecules"],
)
def test_held_out_sequences_round_trip(name: str) -> None:
    model = load_model(name)
    texts = model.data_objects[:ROUND_TRIP_SAMPLE]
    decoded = model.decode(model.encode(texts))
    matches = [a == b for a, b in zip(texts, decoded, strict=True)]
    assert any(matches), "no held-out example survives encode -> decode"
    first = texts[matches.index(True)]
    assert model.decode(model.encode([first])) == [first]
    measured = model.manifest["metrics"]["held_out"]["sequence_accuracy"]
    assert abs(np.mean(matches) - measured) < 0.1


@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_held_out_digits_round_trip_to_their_class(name: str) -> None:
    model = load_model(name)
    bunch = load_digits()
    held = np.flatnonzero(_held_out_mask(model))[:100]
    images = [bunch.images[i] / 16.0 for i in held]
    decoded = model.decode(model.encode(images))
    probs = np.stack([model.objectives[f"looks_like_{k}"].batch(decoded) for k in range(10)], 1)
    assert (probs.argmax(1) == bunch.target[held]).mean() > 0.8


def _held_out_mask(model: VAEModel) -> np.ndarray:
    from safetensors.torch import load_file

    assert model.directory is not None
    return load_file(model.directory / "reference.safetensors")["held_out"].numpy().astype(bool)


def test_expressions_validity_and_objective_known_answers() -> None:
    model = load_model("expressions")
    assert model.is_valid(TARGET_EXPRESSION)
    assert model.objective_values([TARGET_EXPRESSION], "fit_target")[0] == 0.0
    assert not model.is_valid("x+")
    assert math.isnan(model.objective_values(["x+"], "fit_target")[0])


def test_molecules_validity_and_objectives_known_answers() -> None:
    model = load_model("molecules")
    assert model.is_valid(ASPIRIN)
    assert round(float(model.objective_values([ASPIRIN], "qed")[0]), 2) == 0.55
    assert not model.is_valid("C1CC")
    values = model.objective_values(["C1CC", ASPIRIN], "penalized_logp")
    assert math.isnan(values[0]) and np.isfinite(values[1])


@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_a_data_set_digit_is_valid_for_its_class(name: str) -> None:
    model = load_model(name)
    bunch = load_digits()
    zero = bunch.images[0] / 16.0  # the first image is a clear 0
    assert bunch.target[0] == 0
    assert model.is_valid(zero)
    values = [model.objectives[f"looks_like_{k}"](zero) for k in range(10)]
    assert int(np.argmax(values)) == 0 and values[0] >= 0.9


@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_digit_objectives_are_nan_exactly_where_invalid(name: str) -> None:
    model = load_model(name)
    images = [np.full((8, 8), 0.5), np.zeros((8, 8)), *model.decode(model.sample_prior(40, seed=2))]
    valid = model.validity(images)
    values = model.objective_values(images, "looks_like_3")
    assert valid.any() and not valid.all()
    np.testing.assert_array_equal(np.isfinite(values), valid)


def test_digit_objectives_have_a_differentiable_latent_form() -> None:
    model = load_model("digits-2d")
    z = model.data_latents[:4].double().requires_grad_()
    value = model.objectives["looks_like_7"].latent(z)  # type: ignore[misc]
    value.sum().backward()
    assert value.shape == (4,)
    assert z.grad is not None and torch.isfinite(z.grad).all()
    images = model.decode(z.detach().float())
    np.testing.assert_allclose(
        value.detach().numpy(), model.objectives["looks_like_7"].batch(images), atol=1e-5
    )


def test_unknown_model_name_lists_the_available_ones() -> None:
    expected = r"'proteins' is neither a built-in model \(.*digits-2d"
    with pytest.raises(InputValueError, match=expected):
        load_model("proteins")


def test_without_rdkit_molecules_is_unavailable_with_the_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "rdkit_available", lambda: False)
    info = {i.name: i for i in list_models()}
    assert not info["molecules"].available
    assert "pip install 'scales-viz[chem]'" in info["molecules"].reason
    assert info["expressions"].available
    with pytest.raises(MissingExtraError, match=r"scales-viz\[chem\]"):
        load_model("molecules")


def test_encode_names_the_bad_item() -> None:
    model = load_model("expressions")
    with pytest.raises(InputValueError, match=r"item 1 .*token 'q'"):
        model.encode(["x", "q+x"])
    with pytest.raises(InputValueError, match=r"item 0 .* has 25 tokens; .* at most 19"):
        model.encode(["x+" * 12 + "x"])


def test_molecules_reconstruction_is_what_its_manifest_reports() -> None:
    model = load_model("molecules")
    texts = model.data_objects[:ROUND_TRIP_SAMPLE]
    decoded = model.decode(model.encode(texts))
    exact = np.mean([a == b for a, b in zip(texts, decoded, strict=True)])
    measured = model.manifest["metrics"]["held_out"]
    # The targets (>= 50% exact, >= 85% decoded valid), and what the manifest says.
    assert exact >= 0.5 and measured["sequence_accuracy"] >= 0.5
    assert abs(exact - measured["sequence_accuracy"]) < 0.1
    assert model.validity(decoded).mean() >= 0.85 and measured["decoded_valid"] >= 0.85
