"""The valid-generation protocol and the model card."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from scales_viz.evaluation import (
    GROUPS,
    SCORES,
    Evaluation,
    _auroc,
    _groups,
    _verdict,
    evaluate_model,
    model_card,
)
from scales_viz.models import VAEModel, load_model

GROUP = 30


@pytest.fixture(scope="module")
def model() -> VAEModel:
    return load_model("digits-2d")


@pytest.fixture(scope="module")
def evaluation(model: VAEModel) -> Evaluation:
    return evaluate_model(model, group_size=GROUP, seed=0)


def _pairwise_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC as the probability that a valid point outscores an invalid one (ties count 1/2)."""
    pos, neg = scores[labels], scores[~labels]
    wins = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    return float(np.mean(wins))


def test_auroc_equals_the_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(40) < 0.4
    scores = rng.normal(size=40) + labels
    assert _auroc(labels, scores) == pytest.approx(_pairwise_auroc(labels, scores))


def test_non_finite_scores_rank_lowest() -> None:
    labels = np.array([True, True, False, False])
    assert _auroc(labels, np.array([1.0, 2.0, -np.inf, np.nan])) == 1.0
    assert _auroc(labels, np.array([-np.inf, np.nan, 1.0, 2.0])) == 0.0


def test_auroc_is_nan_with_one_class() -> None:
    assert math.isnan(_auroc(np.ones(5, dtype=bool), np.arange(5.0)))


def test_groups_have_the_protocol_scales_and_distance_excludes_evaluated_points(
    model: VAEModel,
) -> None:
    groups, rest = _groups(model, 200, seed=0)
    assert [len(g) for g in groups.values()] == [200, 200, 200]
    ratio = groups["far"].std() / groups["prior"].std()
    assert 4.0 < float(ratio) < 6.0
    evaluated = {tuple(row) for row in groups["data"].tolist()}
    assert not evaluated & {tuple(row) for row in rest.tolist()}
    assert len(rest) + len(groups["data"]) == len(model.data_latents)


def test_evaluation_reports_every_score_and_group(evaluation: Evaluation) -> None:
    assert set(evaluation.auroc) == set(SCORES) == set(evaluation.seconds)
    assert set(evaluation.validity) == set(GROUPS)
    for value in evaluation.auroc.values():
        assert math.isnan(value) or 0.0 <= value <= 1.0
    assert all(0.0 <= v <= 1.0 for v in evaluation.validity.values())
    assert evaluation.means["prior"]["far"] < evaluation.means["prior"]["prior"]


def test_evaluation_is_deterministic_per_seed(model: VAEModel, evaluation: Evaluation) -> None:
    again = evaluate_model(model, group_size=GROUP, seed=0)
    assert again.auroc == evaluation.auroc and again.validity == evaluation.validity


def test_verdict_says_when_scales_does_not_beat_a_baseline(evaluation: Evaluation) -> None:
    worse = Evaluation(**{**evaluation.to_dict(), "auroc": dict.fromkeys(SCORES, 0.6)})
    lost = {**worse.auroc, "scales": 0.3, "prior": 0.9}
    text = _verdict(Evaluation(**{**worse.to_dict(), "auroc": lost}))
    assert "does not beat likelihood (0.600), prior (0.900)" in text and "below 0.5" in text
    won = {**worse.auroc, "scales": 0.95}
    assert "highest" in _verdict(Evaluation(**{**worse.to_dict(), "auroc": won}))


def test_card_carries_the_measured_numbers(model: VAEModel, evaluation: Evaluation) -> None:
    card = model_card(model, evaluation)
    for heading in ("## Model", "## Data", "## Training", "## Validity of decodings"):
        assert heading in card
    assert f"{evaluation.auroc['scales']:.3f}" in card
    assert f"{evaluation.validity['prior']:.1%}" in card
    assert _verdict(evaluation) in card


def test_card_of_a_model_without_a_training_record(model: VAEModel, evaluation: Evaluation) -> None:
    """A paper checkpoint or a user's model: no empty tables, no log it does not have."""
    import copy

    built_in = model_card(model, evaluation)
    assert "training_log.json" in built_in and "## Reconstruction and fit" in built_in
    foreign = copy.copy(model)
    foreign.manifest = {k: v for k, v in model.manifest.items() if k not in ("training", "metrics")}
    foreign.directory = None
    card = model_card(foreign, evaluation)
    assert "Not trained by scales-viz" in card
    assert "training_log.json" not in card and "## Reconstruction and fit" not in card
    assert "| measure | value |" not in card
    assert _verdict(evaluation) in card


def test_too_few_reference_points_leave_the_data_group_empty() -> None:
    """All reference latents are kept for the distance to data: the data group is empty and
    its validity NaN, without a warning (it was "Mean of empty slice")."""
    import copy
    import math
    import warnings

    from scales_viz.evaluation import NEIGHBOURS, evaluate_model
    from scales_viz.models import load_model

    model = copy.copy(load_model("digits-2d"))
    model._data_latents = model.data_latents[:NEIGHBOURS]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        evaluation = evaluate_model(model, group_size=8)
    assert math.isnan(evaluation.validity["data"])
    assert not (evaluation.raw["group"] == "data").any()
    assert (evaluation.raw["group"] == "prior").sum() == 8


def test_reference_reconstruction_agrees_with_the_training_record() -> None:
    """The card's reconstruction (the shipped held-out reference decoded from its encoder
    means) is measured afresh; it agrees with what training measured on its held-out set."""
    from scales_viz.evaluation import reference_reconstruction
    from scales_viz.models import load_model

    model = load_model("expressions")
    record = reference_reconstruction(model)
    held = model.manifest["metrics"]["held_out"]
    assert record["n"] == len(model.data_objects)
    assert abs(record["exact"] - held["sequence_accuracy"]) < 0.05
    assert abs(record["decoded_valid"] - held["decoded_valid"]) < 0.05
    assert reference_reconstruction(load_model("digits-2d")) == {}
