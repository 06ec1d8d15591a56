"""Run files from the field's own LSO code, each written the way that code writes it."""

from __future__ import annotations

import json
import math
import pickle
import re
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


# weighted-retraining's per-round GP data ---------------------------------------------------

#: The GP's training strings of every round (opt_chem.py's chosen_smiles).
GP_TRAINING = ["x", "x+1", "sin(x)", "exp(x)", "x*x+1", "3*x"]
#: opt_chem.py's --invalid_score default (opt_scripts/base.py).
INVALID_SCORE = -4.0
#: opt_point_properties of EXPRESSIONS; -5.0 lies below invalid_score, so the GP data clips it.
PROPERTIES = [-1.0, -2.0, -0.5, -5.0, -3.0, -1.0]


def _opt_chem_run(  # type: ignore[no-untyped-def]
    root: Path, model, *, other_model_rounds: tuple[int, ...] = (), frequency: int = 2
) -> np.ndarray:
    """Write what opt_chem.py's main_loop writes with ``--lso_strategy opt``: per round
    ``ret_idx``, ``gp/iter{frequency * ret_idx}/data.npz`` rewritten by ``_save_gp_data``
    after each query (the round's model's encodings of the training strings, then each
    query's ``z_opt``), and ``results.npz`` after the round. Rounds in `other_model_rounds`
    were encoded by a model other than `model` (as after retraining). Returns the `z_opt`s."""
    rng = np.random.default_rng(1)
    z_opts = rng.normal(size=(len(EXPRESSIONS), model.latent_dim)).astype(np.float32)
    results: dict[str, object] = dict(
        opt_points=[], opt_point_properties=[], opt_model_version=[], params=str(sys.argv),
        sample_points=[], sample_versions=[], sample_properties=[],
    )  # fmt: skip
    (root / "data").mkdir(parents=True)
    for ret_idx in range(len(EXPRESSIONS) // frequency):
        gp_dir = root / "gp" / f"iter{frequency * ret_idx}"
        gp_dir.mkdir(parents=True)
        latent_points = model.encode(GP_TRAINING).numpy().astype(np.float32)
        if ret_idx in other_model_rounds:
            latent_points = latent_points + np.float32(0.5)
        targets = np.linspace(-3.0, 1.0, len(GP_TRAINING))

        def save_gp_data(file: Path, latent_points: np.ndarray, targets: np.ndarray) -> None:
            targets = np.maximum(targets, INVALID_SCORE)
            targets = -targets.reshape(-1, 1)
            np.savez_compressed(
                file,
                X_train=latent_points.astype(np.float32),
                X_test=[],
                y_train=targets.astype(np.float32),
                y_test=[],
                smiles=GP_TRAINING,
            )

        save_gp_data(gp_dir / "data.npz", latent_points, targets)
        new_smiles: list[str] = []
        new_props: list[float] = []
        for query in range(frequency):
            i = frequency * ret_idx + query
            z_opt = z_opts[i : i + 1]
            latent_points = np.concatenate([latent_points, z_opt], axis=0)
            targets = np.concatenate([targets, [PROPERTIES[i]]], axis=0)
            save_gp_data(gp_dir / "data.npz", latent_points, targets)
            new_smiles += [EXPRESSIONS[i]]
            new_props += [PROPERTIES[i]]
        results["opt_points"] += new_smiles  # type: ignore[operator]
        results["opt_point_properties"] += new_props  # type: ignore[operator]
        results["opt_model_version"] += [ret_idx] * len(new_smiles)  # type: ignore[operator]
        np.savez_compressed(str(root / "results.npz"), **results)  # type: ignore[arg-type]
    return z_opts


def _latents(store: RunStore, run_id: str, d: int) -> np.ndarray:
    return store.points([run_id])[[f"z_{k}" for k in range(d)]].to_numpy()


def test_weighted_retraining_gp_data_gives_own_latents_of_the_rounds_of_the_loaded_model(
    expressions,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """Rounds 0 and 2 were run with the loaded model, round 1 with another (retrained) one:
    0 and 2 keep the GP's own latents, round 1 is placed by the encoder, and both say so."""
    z_opts = _opt_chem_run(tmp_path / "run", expressions, other_model_rounds=(1,))
    store = RunStore(tmp_path / "runs.sqlite")
    (own, encoded), summary = import_field_runs(
        store, tmp_path / "run", model=expressions, objective="fit_target",
        fmt="weighted-retraining",
    )  # fmt: skip
    assert summary["latents"] == "mixed" and summary["own_rows"] == 4 and summary["placed"] == 6
    assert own.name == "results" and encoded.name == "results (encoded)"
    own_points = store.points([own.id])
    assert own_points["step"].tolist() == [0, 0, 2, 2]
    assert own_points["objective"].tolist() == [-1.0, -2.0, -3.0, -1.0]
    d = expressions.latent_dim
    np.testing.assert_array_equal(_latents(store, own.id, d), z_opts[[0, 1, 4, 5]])
    encoded_points = store.points([encoded.id])
    assert encoded_points["step"].tolist() == [1, 1]
    assert encoded_points["objective"].tolist() == [-0.5, -5.0]  # unclipped, as in results
    np.testing.assert_allclose(
        _latents(store, encoded.id, d),
        expressions.encode(EXPRESSIONS[2:4]).double().numpy(),
        atol=1e-6,
    )
    notes = summary["gp"]
    assert notes[0] == "round 0 (gp/iter0/data.npz): the optimiser's own latents"
    assert notes[1].startswith("round 1 (gp/iter2/data.npz): placed by the encoder")
    assert "retrained in round 1" in notes[1]
    assert store.run(own.id).settings["latents"] == "the optimiser's own"
    assert store.run(encoded.id).settings["latents"] == ENCODED_NOTE


def test_a_weighted_retraining_run_folder_by_the_cli(expressions, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _opt_chem_run(tmp_path / "run", expressions)
    store = str(tmp_path / "runs.sqlite")
    argv = ["runs", "--store", store, "import", str(tmp_path / "run"), "--model"]
    assert main([*argv, "expressions", "--objective", "fit_target"]) == 0
    out = capsys.readouterr().out
    assert "read 6 proposals as weighted-retraining results.npz; placed 6 at the optimiser's" in out
    assert "GP data: round 2 (gp/iter4/data.npz): the optimiser's own latents" in out
    (info,) = RunStore(store).runs()
    assert info.name == "results" and len(RunStore(store).points([info.id])) == 6


def _gp_file(path: Path, **members: object) -> bytes:
    np.savez_compressed(path, **members)  # type: ignore[arg-type]
    return path.read_bytes()


def test_weighted_retraining_gp_data_that_does_not_match_falls_back_to_the_encoder(
    expressions,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """Files that read as GP data but are not this run's rounds (too many proposals, other
    objective values, another width, opt_expr.py's standardised latents, a round that does
    not exist) leave the points to the encoder, each with its reason."""
    _opt_chem_run(tmp_path / "run", expressions)
    d = expressions.latent_dim
    anchors = expressions.encode(GP_TRAINING).numpy()
    rng = np.random.default_rng(2)

    def chem(width: int, appended: list[float]) -> bytes:
        x = np.concatenate(
            [anchors[:, :1].repeat(width, 1), rng.normal(size=(len(appended), width))]
        )
        y = -np.concatenate([np.zeros(len(GP_TRAINING)), appended]).reshape(-1, 1)
        return _gp_file(
            tmp_path / "gp.npz", X_train=x.astype(np.float32), X_test=[],
            y_train=y.astype(np.float32), y_test=[], smiles=GP_TRAINING,
        )  # fmt: skip

    x_expr = rng.normal(size=(8, d))
    files = {
        "gp/iter0/data.npz": chem(d, [-1.0, -2.0, 0.0]),
        "gp/iter2/data.npz": chem(d, [-0.7, -5.0]),
        "gp/iter4/data.npz": chem(d + 1, [-3.0, -1.0]),
        "gp/iter6/data.npz": chem(d, [0.0, 0.0]),
    }
    # opt_expr.py's expr_data.save_data: standardised latents, no test set.
    expr = _gp_file(
        tmp_path / "expr.npz",
        X_train=np.float32((x_expr - x_expr.mean()) / x_expr.std()),
        y_train=np.float32(np.zeros((8, 1))),
        X_test=np.float32(None),
        y_test=np.float32(None),
    )
    store = RunStore(tmp_path / "runs.sqlite")
    (info,), summary = import_field_runs(
        store, tmp_path / "run" / "results.npz", model=expressions, objective="fit_target",
        fmt="weighted-retraining", gp_data=files,
    )  # fmt: skip
    assert summary["latents"] == "encoded" and summary["own_rows"] == 0
    assert info.name == "results (encoded)"
    notes = "\n".join(summary["gp"])
    assert "holds 3 proposals after its 6 training strings; results.npz has 2 for round 0" in notes
    assert "differ from results.npz's opt_point_properties (proposal 0: -0.7 vs -0.5)" in notes
    assert f"its latents are {d + 1}-wide; the model has d={d}" in notes
    assert "gp/iter6/data.npz: matches no round" in notes
    np.testing.assert_allclose(
        _latents(store, info.id, d), expressions.encode(EXPRESSIONS).double().numpy(), atol=1e-6
    )
    (_,), summary = import_field_runs(
        store, tmp_path / "run" / "results.npz", model=expressions, objective="fit_target",
        fmt="weighted-retraining", gp_data={"opt1/data.npz": expr},
    )  # fmt: skip
    assert summary["latents"] == "encoded"
    assert (
        "opt1/data.npz): placed by the encoder: opt_expr.py saves standardised"
        in (summary["gp"][0])
    )


def _objects() -> np.ndarray:
    ragged = np.empty(2, dtype=object)
    ragged[:] = [[0.0], [0.0, 1.0]]
    return ragged


@pytest.mark.parametrize(
    ("name", "members", "message"),
    [
        ("gp/iter0/data.npz", b"not an archive", "expected weighted-retraining's GP data"),
        ("gp/iter0/data.npz", {"X_train": _objects(), "y_train": np.zeros(2)}, "Python objects"),
        ("gp/iter0/data.npz", {"X_train": np.zeros(8), "y_train": np.zeros(8)}, "X_train must"),
        ("gp/iter0/data.npz", {"X_train": np.zeros((8, 25)), "y_train": np.zeros(7)}, "y_train"),
        ("gp/iter0/data.npz", {"y_train": np.zeros(8)}, "missing ['X_train']"),
        (
            "gp/iter0/data.npz",
            {"X_train": np.zeros((8, 25)), "y_train": np.zeros(8), "smiles": np.zeros(6)},
            "smiles must be a unicode array",
        ),
        ("results/gp.npz", {"X_train": np.zeros((8, 25)), "y_train": np.zeros(8)}, "expected gp"),
    ],
)
def test_bad_weighted_retraining_gp_data_is_refused(  # type: ignore[no-untyped-def]
    expressions, tmp_path: Path, name: str, members: object, message: str
) -> None:
    _opt_chem_run(tmp_path / "run", expressions)
    if isinstance(members, bytes):
        data = members
    else:
        np.savez(tmp_path / "bad.npz", **members)  # type: ignore[arg-type]
        data = (tmp_path / "bad.npz").read_bytes()
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(InputValueError, match=re.escape(message)):
        import_field_runs(
            store, tmp_path / "run" / "results.npz", model=expressions, objective="fit_target",
            fmt="weighted-retraining", gp_data={name: data},
        )  # fmt: skip
    assert store.runs() == []
