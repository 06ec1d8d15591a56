"""The decoder-family comparison and the plain ScaLES caveat of the model cards."""

from __future__ import annotations

import math

from scales_viz.evaluation import decoder_family, family_rows, scales_caveat
from scales_viz.models.manifest import ModuleSpec


def _manifest(feedback: str | None, architecture: str = "softmax_input_rnn") -> dict[str, object]:
    params = {} if feedback is None else {"feedback": feedback}
    return {
        "decoder": ModuleSpec(architecture, params, "decoder.safetensors", "0" * 64),
        "metrics": {"held_out": {"sequence_accuracy": 0.7, "decoded_valid": 0.97}},
    }


def _card(scales: float, likelihood: float) -> dict[str, object]:
    return {
        "validity": {"data": 0.99, "prior": 0.5, "far": 0.1},
        "auroc": {
            "scales": scales,
            "likelihood": likelihood,
            "prior": 0.6,
            "distance_to_data": 0.7,
        },
    }


def test_decoder_families_are_named_by_what_is_fed_back() -> None:
    assert decoder_family(_manifest("soft")).startswith("smooth")
    assert decoder_family(_manifest("hard")).startswith("autoregressive")
    assert decoder_family(_manifest(None, "softmax_feedback_rnn")).startswith("the paper's")
    assert decoder_family({"decoder": {"architecture": "bernoulli_mlp"}}).startswith("pixels")


def test_family_rows_carry_reconstruction_validity_and_every_auroc() -> None:
    rows = family_rows(
        [("smooth", _manifest("soft"), _card(0.8, 0.7)), ("ar", _manifest("hard"), _card(0.6, 0.9))]
    )
    assert [r["model"] for r in rows] == ["smooth", "ar"]
    assert rows[0]["reconstruction (held out)"] == 0.7
    assert rows[0]["held-out decoding valid"] == 0.97
    assert rows[1]["valid: far"] == 0.1 and rows[1]["AUROC likelihood"] == 0.9
    images = family_rows(
        [("d", {"metrics": {"held_out": {"reconstruction_accuracy": 0.9}}}, _card(0.5, 0.5))]
    )
    assert images[0]["reconstruction (held out)"] == 0.9
    assert math.isnan(images[0]["held-out decoding valid"])


def test_the_caveat_speaks_only_when_scales_does_not_separate_validity() -> None:
    assert scales_caveat(_card(0.85, 0.7)) is None
    weak = scales_caveat(_card(0.53, 0.5))
    assert weak is not None and "0.53" in weak and "distance to data (0.70)" in weak
    beaten = scales_caveat(_card(0.75, 0.9))
    assert beaten is not None and "below likelihood (0.90)" in beaten
    assert scales_caveat({"auroc": {"scales": float("nan")}}) is None


def test_a_measured_contrast_joins_the_family_table_of_a_built_in(
    tmp_path,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """``evaluate SPEC --contrast-of NAME`` keeps the measurement (not the weights) beside
    built-in NAME; its card then lists it as measured, not shipped."""
    import shutil

    import scales_viz.models.registry as registry
    from scales_viz.cli import main
    from scales_viz.evaluation import contrast_records, evaluate_model, model_card
    from scales_viz.models import load_model

    models = tmp_path / "models"
    shutil.copytree(registry.model_dir("digits-2d"), models / "digits-2d")
    shutil.copytree(registry.model_dir("digits"), tmp_path / "other" / "digits-8d")
    monkeypatch.setattr(registry, "MODELS_DIR", models)
    spec = str(tmp_path / "other" / "digits-8d")
    argv = ["evaluate", spec, "--group-size", "12", "--out", str(tmp_path / "card")]
    assert main([*argv, "--contrast-of", "digits-2d"]) == 0
    assert main([*argv, "--contrast-of", "digits-2d"]) == 0  # replaces, does not repeat
    (record,) = contrast_records(models / "digits-2d")
    name, manifest, evaluation = record
    assert name == "digits (measured, not shipped)"  # the name its manifest gives
    assert manifest["decoder"]["architecture"] == "bernoulli_mlp" and "auroc" in evaluation
    assert not list((models / "digits-2d").glob("*contrast*.safetensors"))
    model = load_model(str(models / "digits-2d"))
    card = model_card(model, evaluate_model(model, group_size=12, seed=0))
    assert "| digits (measured, not shipped) | pixels" in card
