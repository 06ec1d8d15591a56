"""Fuzzing the run-file reader and importer: every bad file ends in one clear error.

For each format (CSV, Parquet, JSON, NPZ) the reader gets random bytes, mutations of a valid
file and schema-shaped tables with hostile cells. The contract: either a frame that meets the
schema comes back, or :class:`InputValueError` (with a message) is raised; never any other
exception. Imports into a store are all or nothing: a refused file leaves the store as it was.
"""

from __future__ import annotations

import io
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from fuzzing import FUZZ, SCALARS, bytes_like
from hypothesis import given, settings
from hypothesis import strategies as st

from scales_viz.errors import InputValueError
from scales_viz.lso.io import MAX_IMPORT_ROWS, export_runs, import_runs, read_runs
from scales_viz.lso.records import latent_columns
from scales_viz.lso.store import RunStore

if TYPE_CHECKING:
    from scales_viz.models import VAEModel

D = 2
#: Imports score every point on a model, so the all-or-nothing property gets fewer examples
#: than the readers (whose 1000 each cover the parsing).
IMPORT_EXAMPLES = 250
FORMATS = ["csv", "parquet", "json", "npz"]


def _valid_table(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        rows.append(
            {
                "run": f"r{i % 2}",
                "optimizer": "random",
                "seed": i % 2,
                "step": i // 2,
                "index": 0,
                **{
                    name: float(v)
                    for name, v in zip(latent_columns(D), rng.normal(size=D), strict=True)
                },
                "objective": float(rng.normal()) if i != 3 else math.nan,
                "valid": i != 3,
                "wall_time": 0.1 * i,
            }
        )
    return pd.DataFrame(rows)


def _valid_npz() -> bytes:
    table = _valid_table()
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        z=table[latent_columns(D)].to_numpy(),
        objective=table["objective"].to_numpy(),
        step=table["step"].to_numpy(),
        run=table["run"].to_numpy().astype(str),
    )
    return buffer.getvalue()


VALID = {
    "csv": export_runs(_valid_table(), "csv"),
    "parquet": export_runs(_valid_table(), "parquet"),
    "json": export_runs(_valid_table(), "json"),
    "npz": _valid_npz(),
}


def _check_contract(data: bytes, fmt: str) -> pd.DataFrame | None:
    """Read `data`; a frame that meets the schema, or None after one clear error."""
    try:
        frame = read_runs(data, fmt=fmt, latent_dim=D, filename=f"fuzz.{fmt}")
    except InputValueError as exc:
        assert str(exc).strip(), "an error without a message"
        return None
    names = latent_columns(D)
    assert {"run", "optimizer", "seed", "step", "index", *names, "objective"} <= set(frame)
    assert 0 < len(frame) <= MAX_IMPORT_ROWS
    assert np.isfinite(frame[names].to_numpy(dtype=np.float64)).all()
    assert (frame["step"].to_numpy() >= 0).all()
    assert not np.isinf(frame["objective"].to_numpy(dtype=np.float64)).any()
    assert not frame.duplicated(["run", "step", "index"]).any()
    return frame


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_valid_files_read(fmt: str) -> None:
    frame = _check_contract(VALID[fmt], fmt)
    assert frame is not None and len(frame) == 6


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data())
def test_bytes_and_mutations(fmt: str, data: st.DataObject) -> None:
    _check_contract(data.draw(bytes_like(VALID[fmt])), fmt)


# Schema-shaped tables whose cells are hostile: right columns, wrong values.
_CELLS = st.one_of(
    SCALARS,
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4),
    st.sampled_from(["1e999", "-1e999", "0x10", "1_000", " 3 ", "[1, 2]", "true", "nan"]),
)
_COLUMNS = st.lists(
    st.sampled_from(
        [
            *("run", "optimizer", "seed", "step", "index", "z_0", "z_1", "z_2", "z", "objective"),
            *("valid", "wall_time", "z_01", "", "step "),
        ]
    ),
    min_size=1,
    max_size=10,
    unique=True,
)


@st.composite
def _hostile_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    columns = draw(_COLUMNS)
    return [{c: draw(_CELLS) for c in columns} for _ in range(draw(st.integers(0, 5)))]


def _encode(rows: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(rows, default=str).encode()
    frame = pd.DataFrame(rows).map(
        lambda v: json.dumps(v, default=str) if isinstance(v, list) else v
    )
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8", "surrogatepass")
    buffer = io.BytesIO()
    frame.astype(str).to_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
@FUZZ
@given(rows=_hostile_rows())
def test_hostile_cells(fmt: str, rows: list[dict[str, Any]]) -> None:
    try:
        data = _encode(rows, fmt)
    except (UnicodeEncodeError, ValueError):
        return  # not representable in this format
    _check_contract(data, fmt)


@st.composite
def _hostile_npz(draw: st.DrawFn) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    for name in draw(st.lists(st.sampled_from(["z", "latents", "objective", "y", "step", "valid",
                                               "run", "seed", "index", "other"]),
                              min_size=1, max_size=6, unique=True)):  # fmt: skip
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        dtype = draw(st.sampled_from(["f8", "f4", "i8", "u1", "?", "U3", "c16"]))
        size = int(np.prod(shape)) if shape else 1
        values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32),
                               min_size=size, max_size=size))  # fmt: skip
        with np.errstate(all="ignore"):
            raw = np.array(values, dtype=np.float64).reshape(shape)
            arrays[name] = raw.astype(str) if dtype == "U3" else raw.astype(dtype)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


@FUZZ
@given(data=_hostile_npz())
def test_hostile_npz_arrays(data: bytes) -> None:
    _check_contract(data, "npz")


class _Counting:
    """A store snapshot: runs and points per run."""

    def __init__(self, store: RunStore) -> None:
        runs = store.runs()
        self.ids = sorted(run.id for run in runs)
        self.points = len(store.points(self.ids)) if self.ids else 0


@pytest.fixture(scope="module")
def digits() -> VAEModel:
    from scales_viz.models import load_model

    return load_model("digits-2d")


@pytest.mark.parametrize("fmt", FORMATS)
def test_imports_are_all_or_nothing(
    fmt: str, digits: VAEModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = RunStore(tmp_path_factory.mktemp("store") / "runs.sqlite")
    import_runs(store, VALID["csv"], model=digits, objective="looks_like_3", filename="a.csv")
    _fuzz_import(fmt, store, digits)


@settings(parent=FUZZ, max_examples=IMPORT_EXAMPLES)
@given(data=st.data())
def _fuzz_import(fmt: str, store: RunStore, digits: VAEModel, data: st.DataObject) -> None:
    before = _Counting(store)
    payload = data.draw(bytes_like(VALID[fmt]))
    try:
        added = import_runs(
            store, payload, model=digits, objective="looks_like_3", filename=f"b.{fmt}"
        )
    except InputValueError:
        after = _Counting(store)
        assert (after.ids, after.points) == (before.ids, before.points)
        return
    after = _Counting(store)
    assert set(after.ids) == set(before.ids) | {run.id for run in added}
    expected = read_runs(payload, fmt=fmt, latent_dim=D, filename=f"b.{fmt}")
    assert after.points == before.points + len(expected)
    for run in added:  # keep the store small so each example stays fast
        store.delete_run(run.id)
