"""Run files from the field's own LSO code, each written the way that code writes it."""

from __future__ import annotations

import json
import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from scales_viz.cli import main
from scales_viz.errors import InputValueError
from scales_viz.lso.io import ENCODED_NOTE, import_field_runs
from scales_viz.lso.store import RunStore
from scales_viz.models import load_model

EXPRESSIONS = ["x*x", "sin(x)+1", "x+exp(2*x)", "3*x/2", "x*x*x", "sin(x*x)+x"]


@pytest.fixture(scope="module")
def expressions():  # type: ignore[no-untyped-def]
    return load_model("expressions")


def _poli_history(path: Path) -> Path:
    """poli-baselines keeps ``history = {"x": [x0, x1, ...], "y": [y0, y1, ...]}`` with each
    ``x_i`` a ``b x L`` array of tokens padded with "" and each ``y_i`` a ``b x 1`` array, and
    saves it as JSON with ``.tolist()``."""
    width = max(len(e) for e in EXPRESSIONS)

    def batch(texts: list[str]) -> np.ndarray:
        return np.array([list(t) + [""] * (width - len(t)) for t in texts])

    history = {
        "x": [batch(EXPRESSIONS[:2]), batch(EXPRESSIONS[2:4]), batch(EXPRESSIONS[4:])],
        "y": [np.array([[-1.0], [-2.0]]), np.array([[-0.5], [np.nan]]), np.array([[-3.0], [-1]])],
    }
    record = {
        "x": [x.tolist() for x in history["x"]],
        "y": [[None if math.isnan(v) else v for v in y.ravel().tolist()] for y in history["y"]],
        "metadata": {"solver": "genetic_algorithm", "black_box": "toy"},
    }
    file = path / "history.json"
    file.write_text(json.dumps(record))
    return file


def test_a_poli_history_is_placed_by_the_encoder_and_says_so(expressions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = RunStore(tmp_path / "runs.sqlite")
    (info,), summary = import_field_runs(
        store,
        _poli_history(tmp_path),
        model=expressions,
        objective="fit_target",
        fmt="poli",
    )
    assert summary["rows"] == summary["placed"] == 6 and summary["latents"] == "encoded"
    assert 0.0 <= summary["round_trip"] <= 1.0
    stored = store.run(info.id)
    assert stored.optimizer == "genetic_algorithm" and stored.name == "history (encoded)"
    assert stored.settings["latents"] == ENCODED_NOTE
    points = store.points([info.id])
    assert points["step"].tolist() == [0, 0, 1, 1, 2, 2]
    assert points["index"].tolist() == [0, 1, 0, 1, 0, 1]
    objective = points["objective"].to_numpy()
    assert objective[0] == -1.0 and math.isnan(objective[3])
    # The latents are the encoder means of the proposed strings.
    z = points[[f"z_{k}" for k in range(expressions.latent_dim)]].to_numpy()
    np.testing.assert_allclose(z, expressions.encode(EXPRESSIONS).double().numpy(), atol=1e-6)
    assert points["valid"].all()  # every proposal parses under the grammar


def test_weighted_retraining_results_use_their_own_latents_when_they_fit(
    expressions,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """weighted-retraining saves ``np.savez_compressed(results.npz, **results)`` with
    opt_points (strings), opt_point_properties, opt_model_version, params (a string) and
    other members; some scripts add opt_latent_points."""
    latents = np.random.default_rng(0).normal(size=(6, expressions.latent_dim))
    results = {
        "opt_points": np.array(EXPRESSIONS),
        "opt_point_properties": np.array([-1.0, -2.0, -0.5, -0.7, -3.0, -1.0]),
        "opt_model_version": np.array([0, 0, 1, 1, 2, 2]),
        "params": str(sys.argv),
        "sample_points": np.array(EXPRESSIONS[:3]),
    }
    store = RunStore(tmp_path / "runs.sqlite")
    np.savez_compressed(tmp_path / "results.npz", **results)
    (encoded,), summary = import_field_runs(
        store,
        tmp_path / "results.npz",
        model=expressions,
        objective="fit_target",
        fmt="weighted-retraining",
    )
    assert summary["latents"] == "encoded"
    assert store.points([encoded.id])["step"].tolist() == [0, 0, 1, 1, 2, 2]
    np.savez_compressed(tmp_path / "own.npz", **results, opt_latent_points=latents)
    (own,), summary = import_field_runs(
        store, tmp_path / "own.npz", model=expressions, objective="fit_target",
        fmt="weighted-retraining",
    )  # fmt: skip
    assert summary["latents"] == "own" and store.run(own.id).name == "own"
    z = store.points([own.id])[[f"z_{k}" for k in range(expressions.latent_dim)]].to_numpy()
    np.testing.assert_allclose(z, latents)
    # A member the importer needs that holds Python objects is refused, never unpickled.
    ragged = np.empty(2, dtype=object)
    ragged[:] = [["x"], ["x", "+", "1"]]
    np.savez(tmp_path / "bad.npz", opt_points=ragged, opt_point_properties=np.zeros(2))
    with pytest.raises(InputValueError, match="holds Python objects"):
        import_field_runs(
            store, tmp_path / "bad.npz", model=expressions, objective="fit_target",
            fmt="weighted-retraining",
        )  # fmt: skip


def test_a_molscore_scores_csv_keeps_its_validity_and_objective(tmp_path: Path) -> None:
    pytest.importorskip("rdkit")
    molecules = load_model("molecules")
    header = "model,task,step,batch_idx,absolute_time,smiles,mol_id,unique,occurrences,valid,"
    header += "valid_score,QED_qed,QED_qed_score,filter,score\n"
    rows = [
        "reinvent,qed,1,0,1.2,CCO,1_0,True,0,True,1.0,0.41,0.41,1.0,0.41",
        "reinvent,qed,1,1,1.2,c1ccccc1O,1_1,True,0,True,1.0,0.47,0.47,1.0,0.47",
        "reinvent,qed,2,0,2.5,C1CC,2_0,True,0,False,0.0,0.0,0.0,0.0,0.0",
        "reinvent,qed,2,1,2.5,CC(=O)Nc1ccc(O)cc1,2_1,True,0,True,1.0,0.59,0.59,1.0,0.59",
    ]
    (tmp_path / "scores.csv").write_text(header + "\n".join(rows) + "\n")
    store = RunStore(tmp_path / "runs.sqlite")
    (info,), summary = import_field_runs(
        store, tmp_path / "scores.csv", model=molecules, objective="qed", fmt="molscore"
    )
    assert summary["placed"] == 4 and store.run(info.id).optimizer == "reinvent"
    points = store.points([info.id])
    assert points["valid"].tolist() == [True, True, False, True]
    assert points["objective"].tolist() == [0.41, 0.47, 0.0, 0.59]
    assert points["step"].tolist() == [1, 1, 2, 2]


def test_a_tracker_table_by_the_cli_with_skipped_strings(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A LOL-BO-style top-k table exported from a tracker: step, string, score; a string the
    model cannot encode is skipped and counted."""
    table = "step,top_k_strings,top_k_scores\n0,x*x,-1.5\n0,sin(x)+1,-2.0\n1,x@@y,-0.1\n"
    table += "1,x+exp(2*x),-0.2\n"
    (tmp_path / "top_k.csv").write_text(table)
    store = str(tmp_path / "runs.sqlite")
    argv = ["runs", "--store", store, "import", str(tmp_path / "top_k.csv"), "--model"]
    assert main([*argv, "expressions", "--objective", "fit_target"]) == 0
    out = capsys.readouterr().out
    assert "read 4 proposals as experiment-tracker table" in out
    assert "skipped 1 the model cannot encode (first: 'x@@y')" in out
    (info,) = RunStore(store).runs()
    assert RunStore(store).points([info.id])["objective"].tolist() == [-1.5, -2.0, -0.2]


def test_pickled_results_are_refused_with_a_clear_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The ScaLES authors' sol_*.pickle files (and any pickle) are never loaded."""
    (tmp_path / "sol_0.pickle").write_bytes(pickle.dumps({"z": [[0.0] * 25]}))
    (tmp_path / "sneaky.csv").write_bytes(pickle.dumps([1, 2]))
    store = str(tmp_path / "runs.sqlite")
    for name in ("sol_0.pickle", "sneaky.csv"):
        argv = ["runs", "--store", store, "import", str(tmp_path / name), "--model"]
        assert main([*argv, "expressions", "--objective", "fit_target"]) == 2
        assert "never unpickles" in capsys.readouterr().err
    assert RunStore(store).runs() == []
