"""Importing and exporting run files: round trips, refusals with row and column, and scoring."""

from __future__ import annotations

import io
import json
import math
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scales_viz.lso.io as runio
from scales_viz.errors import InputValueError
from scales_viz.lso.io import export_runs, import_runs, read_runs
from scales_viz.lso.records import latent_columns
from scales_viz.lso.store import RunStore
from scales_viz.scoring import evaluate_points

if TYPE_CHECKING:
    from scales_viz.models import VAEModel

RAW = ["run", "optimizer", "seed", "step", "index"]


def _csv(text: str) -> bytes:
    return "\n".join(line.strip() for line in text.strip().splitlines()).encode()


def _read_csv(text: str, d: int = 2, **kwargs: Any) -> pd.DataFrame:
    return read_runs(_csv(text), fmt="csv", latent_dim=d, **kwargs)


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True).filter(
    lambda s: s not in {"na", "nan", "none", "null"}
)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
#: Latents are refused beyond float32's range (models decode in float32).
_LATENT = st.floats(min_value=-3e38, max_value=3e38, allow_nan=False)


@st.composite
def _points_tables(draw: st.DrawFn) -> pd.DataFrame:
    d = draw(st.integers(1, 4))
    runs = draw(st.lists(_LABEL, min_size=1, max_size=3, unique=True))
    meta = {run: (draw(_LABEL), draw(st.integers(-(2**31), 2**31))) for run in runs}
    rows = []
    used: set[tuple[str, int, int]] = set()
    for _ in range(draw(st.integers(1, 25))):
        run = draw(st.sampled_from(runs))
        key = (run, draw(st.integers(0, 4)), draw(st.integers(0, 6)))
        if key in used:
            continue
        used.add(key)
        objective = draw(st.one_of(_FLOAT, st.just(math.nan)))
        rows.append(
            {
                "run": run,
                "optimizer": meta[run][0],
                "seed": meta[run][1],
                "step": key[1],
                "index": key[2],
                **{name: draw(_LATENT) for name in latent_columns(d)},
                "objective": objective,
                "scales": draw(st.floats(allow_nan=True)),
                "likelihood": draw(st.floats(allow_nan=True, allow_infinity=False)),
                "valid": draw(st.booleans()),
                "decoded": draw(st.one_of(st.none(), st.text(max_size=12))),
                "wall_time": draw(st.one_of(_FLOAT, st.just(math.nan))),
            }
        )
    return pd.DataFrame(rows)


def _assert_raw_equal(got: pd.DataFrame, table: pd.DataFrame) -> None:
    d = sum(c.startswith("z_") for c in table.columns)
    assert list(got.columns) == [*RAW, *latent_columns(d), "objective", "valid", "wall_time"]
    for column in ["run", "optimizer"]:
        assert got[column].tolist() == table[column].tolist()
    for column in ["seed", "step", "index"]:
        assert got[column].dtype == np.int64
        np.testing.assert_array_equal(got[column], table[column])
    for column in [*latent_columns(d), "objective", "wall_time"]:
        assert got[column].dtype == np.float64
        np.testing.assert_array_equal(got[column], table[column].astype(float))  # NaN == NaN
    assert got["valid"].tolist() == table["valid"].tolist()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=_points_tables())
def test_export_then_read_round_trips(fmt: str, table: pd.DataFrame) -> None:
    d = sum(c.startswith("z_") for c in table.columns)
    data = export_runs(table, fmt)
    _assert_raw_equal(read_runs(data, fmt=fmt, latent_dim=d), table)


def test_export_formats_and_suffixes(tmp_path: Path) -> None:
    table = pd.DataFrame({"step": [0], "z_0": [0.5], "objective": [1.0], "decoded": ['a,"b\n']})
    for fmt in ("csv", "parquet", "json"):
        path = tmp_path / f"results.{fmt}"
        path.write_bytes(export_runs(table, fmt))
        got = read_runs(path, latent_dim=1)  # format and run name from the path
        assert got["run"].tolist() == ["results"]
        assert got["optimizer"].tolist() == ["imported"]
        assert got["objective"].tolist() == [1.0]
    assert json.loads(export_runs(table.assign(objective=math.nan), "json"))[0]["objective"] is None
    with pytest.raises(InputValueError, match="cannot export"):
        export_runs(table, "npz")
    with pytest.raises(InputValueError, match="cannot tell the format"):
        read_runs(b"step,z_0,objective\n0,1,1", latent_dim=1, filename="results.txt")


def test_z_list_column_in_each_format() -> None:
    csv = _read_csv(
        """
        step,z,objective,valid
        0,"[0.5, -1]",2.5,1
        0,"[1e-3, 2]",,no
        """
    )
    assert csv[["z_0", "z_1"]].to_numpy().tolist() == [[0.5, -1.0], [0.001, 2.0]]
    assert csv["index"].tolist() == [0, 1]  # order within the step
    assert np.isnan(csv["objective"][1])
    assert csv["valid"].tolist() == [True, False]
    rows = [{"step": 0, "z": [0.5, -1.0], "objective": 2.5}, {"step": 1, "z": [1, 2]}]
    rows[1]["objective"] = None
    got = read_runs(json.dumps(rows).encode(), fmt="json", latent_dim=2)
    assert got["z_1"].tolist() == [-1.0, 2.0] and np.isnan(got["objective"][1])
    assert "valid" not in got.columns
    buffer = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buffer)
    got = read_runs(buffer.getvalue(), fmt="parquet", latent_dim=2)
    assert got["z_0"].tolist() == [0.5, 1.0] and got["step"].tolist() == [0, 1]


def test_optional_columns_defaults_and_extra_columns() -> None:
    got = _read_csv(
        """
        step,z_1,z_0,objective,comment,run,seed
        1,0.2,0.1,3,hello,,
        1,0.4,0.3,4,x,b,5
        0,0.6,0.5,5,,b,5
        """,
        filename="my results.csv",
    )
    assert got["run"].tolist() == ["my results", "b", "b"]
    assert got["seed"].tolist() == [0, 5, 5]
    assert got["index"].tolist() == [0, 0, 0]
    assert got[["z_0", "z_1"]].to_numpy().tolist() == [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
    assert "comment" not in got.columns


def test_npz_layout() -> None:
    buffer = io.BytesIO()
    z = np.arange(8.0).reshape(4, 2)
    np.savez(buffer, latents=z, y=np.array([[1.0], [np.nan], [3], [4]]), seed=np.array(3))
    got = read_runs(buffer.getvalue(), fmt="npz", latent_dim=2)
    assert got["step"].tolist() == [0, 1, 2, 3]  # each row its own step
    assert got["index"].tolist() == [0, 0, 0, 0]
    assert got["seed"].tolist() == [3] * 4
    np.testing.assert_array_equal(got[["z_0", "z_1"]].to_numpy(), z)
    assert np.isnan(got["objective"][1])
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, z=z, objective=np.ones(4), step=np.array([0, 0, 1, 1]),
        valid=np.array([True, False, True, True]), run=np.array(["a", "a", "b", "b"]),
    )  # fmt: skip
    got = read_runs(buffer.getvalue(), filename="x.npz", latent_dim=2)
    assert got["index"].tolist() == [0, 1, 0, 1]
    assert got["run"].tolist() == ["a", "a", "b", "b"]
    assert got["valid"].tolist() == [True, False, True, True]


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


def test_missing_required_column_names_it() -> None:
    with pytest.raises(InputValueError) as info:
        _read_csv("step,z_0,z_1,score\n0,1,2,3")
    message = str(info.value)
    assert "required column(s) objective" in message
    assert "score" in message  # what came
    with pytest.raises(InputValueError, match=r"step, z_0 \.\. z_1"):
        _read_csv("objective\n1")


@pytest.mark.parametrize(
    ("body", "row", "column", "problem"),
    [
        ("0,1,2,3\n0,1,2,4\n1,1,2,abc", 3, "objective", "'abc' is not a number"),
        ("0,1,2,3\n1,1,nan,4", 2, "z_1", "missing or NaN"),
        ("0,1,2,3\n1,inf,0,4", 2, "z_0", "infinite"),
        ("0,1,2,3\n1,,0,4", 2, "z_0", "missing or NaN"),
        ("0,1,2,3\n0,1,x,4", 2, "z_1", "'x' is not a number"),
        ("0,1,2,3\n-1,1,2,4", 2, "step", "not a whole number >= 0"),
        ("0,1,2,3\n2.5,1,2,4", 2, "step", "not a whole number"),
        ("0,1,2,3\n,1,2,4", 2, "step", "missing"),
        ("0,1,2,3\n0,1,2,-inf", 2, "objective", "infinite"),
    ],
)
def test_bad_cells_name_row_and_column(body: str, row: int, column: str, problem: str) -> None:
    with pytest.raises(InputValueError) as info:
        _read_csv("step,z_0,z_1,objective\n" + body, filename="f.csv")
    message = str(info.value)
    assert f"f.csv: row {row}, column '{column}'" in message
    assert problem in message


def test_wrong_latent_size() -> None:
    with pytest.raises(InputValueError, match=r"3 latent columns .* d=2"):
        _read_csv("step,z_0,z_1,z_2,objective\n0,1,2,3,4")
    with pytest.raises(InputValueError, match="without gaps; found z_0, z_2"):
        _read_csv("step,z_0,z_2,objective\n0,1,2,4")
    with pytest.raises(InputValueError, match=r"row 2, column 'z': the latent has 3 values.*d=2"):
        _read_csv('step,z,objective\n0,"[1,2]",1\n1,"[1,2,3]",1')
    with pytest.raises(InputValueError, match=r"row 1, column 'z': element 1 .* NaN"):
        _read_csv('step,z,objective\n0,"[1,NaN]",1')
    with pytest.raises(InputValueError, match=r"row 1, column 'z'.*not a JSON array"):
        _read_csv('step,z,objective\n0,"1;2",1')
    buffer = io.BytesIO()
    np.savez(buffer, z=np.zeros((3, 4)), y=np.zeros(3))
    with pytest.raises(InputValueError, match="4 latent dimensions; the model has d=2"):
        read_runs(buffer.getvalue(), fmt="npz", latent_dim=2)


def test_repeats_and_inconsistent_runs() -> None:
    with pytest.raises(InputValueError, match=r"row 3 repeats run 'a', step 0, index 1"):
        _read_csv("run,step,index,z_0,z_1,objective\na,0,0,1,1,1\na,0,1,1,1,1\na,0,1,1,1,1")
    with pytest.raises(InputValueError, match=r"row 2, column 'optimizer': run 'a' has"):
        _read_csv("run,optimizer,step,z_0,z_1,objective\na,bo,0,1,1,1\na,ga,1,1,1,1")
    with pytest.raises(InputValueError, match=r"row 2, column 'valid': 'maybe'"):
        _read_csv("step,z_0,z_1,objective,valid\n0,1,1,1,true\n1,1,1,1,maybe")


def test_empty_files() -> None:
    for data, fmt in ((b"", "csv"), (b"", "parquet"), (b"  \n", "csv")):
        with pytest.raises(InputValueError, match="empty"):
            read_runs(data, fmt=fmt, latent_dim=2)
    with pytest.raises(InputValueError, match="no data rows"):
        _read_csv("step,z_0,z_1,objective")
    with pytest.raises(InputValueError, match="no data rows"):
        read_runs(b"[]", fmt="json", latent_dim=2)


def test_corrupt_files_are_wrapped() -> None:
    good = io.BytesIO()
    pd.DataFrame({"step": [0], "z_0": [1.0], "objective": [1.0]}).to_parquet(good)
    damaged = good.getvalue()[:40] + b"\x00" * 50 + good.getvalue()[90:]
    for data in (b"PAR1 this is not parquet", damaged, good.getvalue()[:-12]):
        with pytest.raises(InputValueError, match="could not read upload as parquet"):
            read_runs(data, fmt="parquet", latent_dim=1)
    with pytest.raises(InputValueError, match="could not read upload as json"):
        read_runs(b'[{"step": 0,', fmt="json", latent_dim=1)
    with pytest.raises(InputValueError, match="expected one JSON array of row objects"):
        read_runs(b'{"step": [0]}', fmt="json", latent_dim=1)
    with pytest.raises(InputValueError, match="row 2 is a JSON list"):
        read_runs(b'[{"step": 0}, [1]]', fmt="json", latent_dim=1)
    with pytest.raises(InputValueError, match="could not read upload as csv"):
        read_runs(b"step,objective\n\xff\xfe", fmt="csv", latent_dim=1)
    with pytest.raises(InputValueError, match="could not read upload as npz"):
        read_runs(b"PK\x03\x04 broken zip", fmt="npz", latent_dim=1)
    with pytest.raises(InputValueError, match=r"single \.npy array"):
        buffer = io.BytesIO()
        np.save(buffer, np.zeros((2, 1)))
        read_runs(buffer.getvalue(), fmt="npz", latent_dim=1)


UNPICKLED: list[str] = []


def _tripwire() -> str:
    UNPICKLED.append("unpickled!")
    return "boom"


class Tripwire:
    """Unpickling this calls :func:`_tripwire` (records that unpickling happened)."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_tripwire, ())


def test_npz_with_pickled_objects_is_refused_unopened() -> None:
    objects = np.array([Tripwire(), Tripwire()], dtype=object)
    for key in ("y", "notes"):  # a needed array, or one that would be ignored
        buffer = io.BytesIO()
        arrays = {"z": np.zeros((2, 1)), "y": np.zeros(2), key: objects}
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        with pytest.raises(InputValueError, match=f"array '{key}' holds Python objects"):
            read_runs(buffer.getvalue(), fmt="npz", latent_dim=1)
    with pytest.raises(InputValueError, match="pickle"):
        read_runs(pickle.dumps({"z": Tripwire()}), fmt="npz", latent_dim=1)
    assert UNPICKLED == []
    pickle.loads(pickle.dumps(Tripwire()))  # the tripwire works
    assert UNPICKLED == ["unpickled!"]


def test_oversize_files_are_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    path.write_text("step,z_0,objective\n" + "0,1,1\n" * 10)
    assert len(read_runs(path, latent_dim=1)) == 10  # fine under the real cap

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(runio, "MAX_IMPORT_BYTES", 40)
    monkeypatch.setattr(Path, "open", no_reading)
    monkeypatch.setattr(Path, "read_bytes", no_reading)
    with pytest.raises(InputValueError, match=r"big.csv is 0.0 MiB; files over .* not imported"):
        read_runs(path, latent_dim=1)
    with pytest.raises(InputValueError, match="not imported"):
        read_runs(b"x" * 41, fmt="csv", latent_dim=1)


def test_too_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runio, "MAX_IMPORT_ROWS", 3)
    _read_csv("step,z_0,z_1,objective\n0,1,1,1\n1,1,1,1\n2,1,1,1")
    with pytest.raises(InputValueError, match="has 4 rows; at most 3"):
        _read_csv("step,z_0,z_1,objective\n0,1,1,1\n1,1,1,1\n2,1,1,1\n3,1,1,1")
    table = pd.DataFrame({"step": range(4), "z_0": 1.0, "z_1": 1.0, "objective": 1.0})
    with pytest.raises(InputValueError, match="has 4 rows; at most 3"):
        read_runs(export_runs(table, "parquet"), fmt="parquet", latent_dim=2)


# --------------------------------------------------------------------------------------------
# Import into the store on a real model
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> VAEModel:
    from scales_viz.models import load_model

    return load_model("digits-2d")


IMPORT_CSV = """
run,optimizer,seed,step,z_0,z_1,objective,valid
alpha,bo,1,0,0.1,0.2,0.5,
alpha,bo,1,0,-1.5,0.3,,
alpha,bo,1,1,2.5,-2.0,0.7,false
beta,ga,2,0,0.0,0.0,0.9,true
beta,ga,2,0,3.0,3.0,,1
"""


def test_import_runs_scores_points_on_the_model(tmp_path: Path, digits: VAEModel) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    calls: list[tuple[int, int]] = []
    runs = import_runs(
        store, _csv(IMPORT_CSV), model=digits, objective="looks_like_3",
        filename="theirs.csv", progress=lambda done, n: calls.append((done, n)),
    )  # fmt: skip
    assert [(r.name, r.optimizer, r.seed, r.status) for r in runs] == [
        ("alpha", "bo", 1, "imported"),
        ("beta", "ga", 2, "imported"),
    ]
    assert all(r.model == "digits-2d" and r.task == "looks_like_3" for r in runs)
    assert runs[0].settings == {"source": "theirs.csv", "format": "csv"}
    assert calls[-1] == (5, 5)
    got = store.points([r.id for r in runs])
    z = got[["z_0", "z_1"]].to_numpy().copy()
    np.testing.assert_array_equal(z, [[0.1, 0.2], [-1.5, 0.3], [2.5, -2.0], [0, 0], [3, 3]])
    assert np.isfinite(got["scales"]).all() and np.isfinite(got["likelihood"]).all()
    reference = evaluate_points(digits, "looks_like_3", z)
    np.testing.assert_allclose(got["scales"], reference.scales)
    np.testing.assert_allclose(got["likelihood"], reference.likelihood)
    # The file's objective is kept (NaN stays NaN); its validity where given, else the model's.
    np.testing.assert_array_equal(got["objective"], [0.5, np.nan, 0.7, 0.9, np.nan])
    expected_valid = [reference.valid[0], reference.valid[1], False, True, True]
    assert got["valid"].tolist() == expected_valid
    assert got["decoded"].isna().all()  # images are re-decoded from z


def test_store_export_import_round_trip(tmp_path: Path, digits: VAEModel) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    first = import_runs(store, _csv(IMPORT_CSV), model=digits, objective="looks_like_3",
                        fmt="csv")  # fmt: skip
    points = store.points([r.id for r in first])
    for fmt in ("csv", "parquet", "json"):
        again = import_runs(store, export_runs(points, fmt), model=digits,
                            objective="looks_like_3", fmt=fmt)  # fmt: skip
        assert [r.optimizer for r in again] == ["bo", "ga"]
        back = store.points([r.id for r in again])
        columns = ["step", "index", "z_0", "z_1", "objective", "scales", "valid", "seed"]
        pd.testing.assert_frame_equal(back[columns], points[columns])


def test_failed_import_stores_nothing(
    tmp_path: Path, digits: VAEModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(InputValueError, match="no objective 'nope'"):
        import_runs(store, _csv(IMPORT_CSV), model=digits, objective="nope", fmt="csv")
    with pytest.raises(InputValueError, match="row 2, column 'z_0'"):
        import_runs(store, _csv("step,z_0,z_1,objective\n0,1,1,1\n1,nan,1,1"), model=digits,
                    objective="looks_like_3", fmt="csv")  # fmt: skip
    inserted = []
    original = RunStore._insert_points

    def failing(conn: Any, rows: list[Any]) -> None:
        original(conn, rows)
        inserted.append(len(rows))
        if len(inserted) == 2:
            raise OSError("disk full")

    monkeypatch.setattr(RunStore, "_insert_points", staticmethod(failing))
    with pytest.raises(OSError, match="disk full"):
        import_runs(store, _csv(IMPORT_CSV), model=digits, objective="looks_like_3", fmt="csv")
    assert inserted == [3, 2]
    assert store.runs() == []
