"""The linked selection and the Inspect table, against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scales_viz.errors import InputValueError
from scales_viz.models import load_model
from scales_viz.score import distance_to_data, prior_logpdf
from scales_viz.selection import MAX_SELECTION, Selection, inspect_table, pick_three


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_model("digits-2d")


def _selection(n: int = 4, model: str = "digits-2d") -> Selection:
    z = np.linspace(-2, 2, 2 * n).reshape(n, 2)
    return Selection(model=model, source="projection", z=z, labels=tuple(f"p{i}" for i in range(n)))


def test_selection_validates_and_round_trips_through_state() -> None:
    selection = _selection()
    back = Selection.from_state(selection.to_state())
    np.testing.assert_array_equal(back.z, selection.z)
    assert back.labels == selection.labels and back.source == "projection"
    with pytest.raises(InputValueError, match="source must be one of"):
        Selection("m", "learn", np.zeros((1, 2)), ("a",))
    with pytest.raises(InputValueError, match="NaN or inf"):
        Selection("m", "slices", np.array([[np.nan, 0.0]]), ("a",))
    with pytest.raises(InputValueError, match="one label per point"):
        Selection("m", "slices", np.zeros((2, 2)), ("a",))
    with pytest.raises(InputValueError, match="at most"):
        Selection("m", "slices", np.zeros((MAX_SELECTION + 1, 2)), ("a",) * (MAX_SELECTION + 1))
    with pytest.raises(InputValueError, match="not a selection record"):
        Selection.from_state({"model": "m"})


def test_inspect_table_matches_direct_scores(digits) -> None:  # type: ignore[no-untyped-def]
    selection = _selection()
    table = inspect_table(digits, selection)
    assert list(table["label"]) == ["p0", "p1", "p2", "p3"]
    z = torch.as_tensor(selection.z)
    np.testing.assert_allclose(table["scales"], digits.scales(z).numpy(), rtol=1e-10)
    np.testing.assert_allclose(table["prior"], prior_logpdf(z, digits.prior_scale).numpy())
    data = digits.data_latents.double()
    np.testing.assert_allclose(table["distance_to_data"], distance_to_data(z, data).numpy())
    objects = digits.decode(z.float())
    np.testing.assert_array_equal(table["valid"], digits.validity(objects))
    expected = digits.objective_values(objects, "looks_like_4")
    np.testing.assert_allclose(table["looks_like_4"], expected, equal_nan=True)
    np.testing.assert_array_equal(table[["z_0", "z_1"]].to_numpy(), selection.z)


def test_inspect_table_refuses_another_models_selection(digits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputValueError, match="made on model 'expressions'"):
        inspect_table(digits, _selection(model="expressions"))


def test_pick_three_needs_three_distinct_rows() -> None:
    selection = _selection(5)
    points = pick_three(selection, [4, 0, 2])
    np.testing.assert_array_equal(points[0], selection.z[4])
    with pytest.raises(InputValueError, match="exactly three"):
        pick_three(selection, [1, 1, 2])
    with pytest.raises(InputValueError, match="exactly three"):
        pick_three(selection, [0, 1, 7])
