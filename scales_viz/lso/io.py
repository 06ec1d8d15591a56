"""Import LSO runs made elsewhere, and export runs, as CSV, Parquet, JSON (and NPZ to import).

File schema
-----------

A run file has one row per evaluated point. Columns (names are case-sensitive; surrounding
spaces are ignored; any other column is ignored):

=============  ========  ==================================================================
column         needed    meaning
=============  ========  ==================================================================
``run``        optional  run label; rows with the same label form one run, named after it.
                         Default (column absent or cell empty): one run named after the file
                         (``results.csv`` -> ``results``).
``optimizer``  optional  optimiser name shown in legends; default ``imported``. Must be the
                         same on every row of a run.
``seed``       optional  integer seed; default 0. Must be the same on every row of a run.
``step``       required  integer >= 0: the step (round) the point was proposed in.
``index``      optional  integer >= 0: position within the step; default the row order within
                         its (run, step). (run, step, index) must not repeat.
``z_0`` ..     required  the latent: either ``z_0`` .. ``z_{d-1}`` (one numeric column per
``z_{d-1}``              dimension, no gaps) or one column ``z`` holding a list of `d` numbers
or ``z``                 (a Parquet/JSON list, or a JSON-array string such as ``[0.1, -2]`` in
                         CSV). `d` must be the model's latent size. Every value must be a
                         finite number.
``objective``  required  the objective (higher is better) as the run measured it; empty, null
                         or NaN for an invalid point. Infinite values are refused.
``valid``      optional  true/false, 1/0 or yes/no. Where absent or empty, the model's own
                         validity of the decoded point is used.
``wall_time``  optional  seconds since the run started (NaN when absent).
=============  ========  ==================================================================

Formats (from the file's suffix unless given):

* ``csv``: UTF-8 text with a header row; empty cells are missing values.
* ``parquet``: any Parquet file with those columns (``z`` as a list column).
* ``json``: one JSON array of row objects (``[{"step": 0, "z": [0.1, 0.2], ...}, ...]``, as
  written by pandas ``to_json(orient="records")``); ``null`` is a missing value.
* ``npz`` (import only): a NumPy archive of plain arrays, never pickled objects: ``z`` or
  ``latents`` (`n x d`), ``objective``, ``y`` or ``scores`` (`n`), and optionally ``valid``,
  ``step``, ``index``, ``wall_time`` (`n` each) and ``run``, ``optimizer``, ``seed`` (`n` or
  one value). Without ``step`` every row is its own step (row `i` is step `i`).

Limits: files over :data:`MAX_IMPORT_BYTES` are refused before they are read, and files with
more than :data:`MAX_IMPORT_ROWS` rows are refused. A file that breaks any rule is refused as
a whole with one :class:`~scales_viz.errors.InputValueError` naming the (1-based) data row and
the column at fault.

On import (:func:`import_runs`) every point is decoded and scored on the loaded model
(decoded object, validity, ScaLES and the likelihood baseline); the file's objective values
are kept as they are. :func:`export_runs` writes the full points table (see
:mod:`scales_viz.lso.records`, decoded objects included); its files import back unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scales_viz.errors import InputTypeError, InputValueError
from scales_viz.lso.records import latent_columns, z_matrix
from scales_viz.lso.store import NewRun, RunStore, StoredRun
from scales_viz.npz import npz_headers
from scales_viz.scoring import evaluate_points

if TYPE_CHECKING:
    from scales_viz.lso.field import GPRound
    from scales_viz.models.base import EncodingModel, LatentModel

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_ROWS",
    "export_runs",
    "file_format",
    "import_field_runs",
    "import_runs",
    "label_runs",
    "read_runs",
    "refuse_pickle",
    "weighted_retraining_folder",
]

LOG = logging.getLogger(__name__)

#: Largest file accepted for import, in bytes (checked before reading).
MAX_IMPORT_BYTES = 50 * 2**20
#: Most rows (points) accepted in one imported file.
MAX_IMPORT_ROWS = 200_000
#: Most bytes a compressed file (Parquet, NPZ) may unpack to.
MAX_UNPACKED_BYTES = 4 * MAX_IMPORT_BYTES
#: Memory cap (address space) of the child process that parses Parquet files.
PARQUET_CHILD_MEMORY = 4 * 2**30
#: Time limit of that child, in seconds.
PARQUET_CHILD_TIMEOUT_S = 120.0
#: Largest latent magnitude accepted (models decode in float32).
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Formats :func:`read_runs` reads and :func:`export_runs` writes.
IMPORT_FORMATS: tuple[str, ...] = ("csv", "parquet", "json", "npz")
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet", "json")
#: Default optimiser name of imported rows.
DEFAULT_OPTIMIZER = "imported"

_SUFFIXES = {
    "csv": "csv",
    "parquet": "parquet",
    "pq": "parquet",
    "json": "json",
    "npz": "npz",
}
_MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none"})
_TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_TEXT = frozenset({"false", "f", "no", "n", "0", "0.0"})
_LATENT_COLUMN = re.compile(r"z_(0|[1-9][0-9]*)")
_NPZ_KEYS = {
    "z": ("z", "latents"),
    "objective": ("objective", "y", "scores"),
}
_NPZ_OPTIONAL = ("valid", "step", "index", "wall_time", "run", "optimizer", "seed")


_PICKLE_SUFFIXES = frozenset({"pickle", "pkl", "pck", "pcl", "p", "joblib"})


def refuse_pickle(filename: str, data: bytes = b"") -> None:
    """Refuse a pickled file (by its name or its first byte) with a clear error: pickles run
    code when loaded, so scales-viz never loads one (the ScaLES authors' ``sol_*.pickle``
    result files included)."""
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix in _PICKLE_SUFFIXES or data[:1] == b"\x80":
        raise InputValueError(
            f"{filename} is a Python pickle, which can run code when loaded; scales-viz never "
            "unpickles files (the ScaLES authors' sol_*.pickle results included). Save the "
            "runs as CSV, Parquet, JSON or NPZ (step, objective and the latent z_0 .. z_{d-1}, "
            "or the proposed strings in one of the field formats) and import that."
        )


def file_format(filename: str, fmt: str | None = None) -> str:
    """The format of a run file: `fmt` if given, else from the file name's suffix.

    Raises:
        InputValueError: unknown format, no recognisable suffix, or a pickle.
    """
    refuse_pickle(filename)
    if fmt is not None:
        value = fmt.strip().lower().lstrip(".")
        value = _SUFFIXES.get(value, value)
        if value not in IMPORT_FORMATS:
            raise InputValueError(f"unknown run file format {fmt!r}; use one of {IMPORT_FORMATS}.")
        return value
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix not in _SUFFIXES:
        raise InputValueError(
            f"cannot tell the format of {filename!r} from its name; name it .csv, .parquet, "
            f".json or .npz, or give the format."
        )
    return _SUFFIXES[suffix]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _filename(source: object, filename: str | None) -> str:
    if filename is not None:
        return filename
    if isinstance(source, str | os.PathLike):
        return Path(source).name or "upload"
    return "upload"


def _shown(value: object) -> str:
    """`repr` of a cell, without numpy's type wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _too_big(filename: str, size: int) -> InputValueError:
    return InputValueError(
        f"{filename} is {size / 2**20:.1f} MiB; files over {MAX_IMPORT_BYTES / 2**20:g} MiB "
        f"are not imported."
    )


def _source_bytes(source: bytes | str | os.PathLike[str], filename: str) -> bytes:
    """The file's bytes, refusing oversize files before reading them."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > MAX_IMPORT_BYTES:
            raise _too_big(filename, len(data))
        return data
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputValueError(f"cannot read {path}: {exc}") from exc
        if size > MAX_IMPORT_BYTES:
            raise _too_big(filename, size)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_IMPORT_BYTES + 1)
        except OSError as exc:
            raise InputValueError(f"cannot read {path}: {exc}") from exc
        if len(data) > MAX_IMPORT_BYTES:  # it grew since stat()
            raise _too_big(filename, len(data))
        return data
    raise InputTypeError(
        f"a run file must be given as bytes or a path; got {type(source).__name__}."
    )


def _could_not_read(filename: str, fmt: str, exc: BaseException) -> InputValueError:
    return InputValueError(f"could not read {filename} as {fmt}: {exc}")


def _parse_csv(data: bytes, filename: str) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _could_not_read(filename, "csv", exc) from exc
    if not text.strip():
        raise InputValueError(f"{filename} is empty.")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (ValueError, csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _could_not_read(filename, "csv", exc) from exc


class _ParquetReader:
    """The child process that parses Parquet files (started on first use, restarted after a
    crash or a timeout); one file at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None

    def _child(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            child = Path(__file__).with_name("parquet_child.py")
            limits = [str(MAX_IMPORT_ROWS), str(MAX_UNPACKED_BYTES), str(PARQUET_CHILD_MEMORY)]
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(child), *limits],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self.proc

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def ask(self, data: bytes) -> tuple[bytes, bytes] | None:
        """(status, payload) for `data`, or None when the child crashed or timed out."""
        with self.lock:
            proc = self._child()
            answer: list[tuple[bytes, bytes] | None] = [None]

            def talk() -> None:
                try:
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write(len(data).to_bytes(8, "little") + data)
                    proc.stdin.flush()
                    head = proc.stdout.read(9)
                    if len(head) == 9:
                        payload = proc.stdout.read(int.from_bytes(head[1:], "little"))
                        answer[0] = (head[:1], payload)
                except OSError:  # the child died mid-request
                    pass

            worker = threading.Thread(target=talk, daemon=True)
            worker.start()
            worker.join(PARQUET_CHILD_TIMEOUT_S)
            if worker.is_alive() or answer[0] is None:
                self._stop()
                worker.join()
            return answer[0]


_PARQUET = _ParquetReader()


def _parse_parquet(data: bytes, filename: str) -> pd.DataFrame:
    """Read a Parquet run file in a child process (see :mod:`scales_viz.lso.parquet_child`).

    pyarrow can abort the interpreter on a crafted file; in a child that costs the child
    only. The child refuses compression and dictionary bombs before unpacking, runs under a
    memory cap and a time limit, and returns plain columns as an Arrow IPC stream.
    """
    import pyarrow as pa

    answer = _PARQUET.ask(data)
    if answer is None:
        LOG.warning("the Parquet reader crashed or timed out on %s", filename)
        raise InputValueError(
            f"could not read {filename} as parquet: the reader crashed or took over "
            f"{PARQUET_CHILD_TIMEOUT_S:g} s on this file; it is damaged or crafted."
        )
    status, payload = answer
    if status != b"T":
        raise InputValueError(
            f"could not read {filename} as parquet: {payload.decode('utf-8', 'replace')}"
        )
    try:
        return pa.ipc.open_stream(payload).read_all().to_pandas()
    except Exception as exc:  # not expected for the child's own output; never a traceback
        raise _could_not_read(filename, "parquet", exc) from exc


def _parse_json(data: bytes, filename: str) -> pd.DataFrame:
    try:
        rows = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _could_not_read(filename, "json", exc) from exc
    if not isinstance(rows, list):
        raise InputValueError(
            f"could not read {filename} as json: expected one JSON array of row objects "
            f'([{{"step": 0, ...}}, ...]); got a JSON {type(rows).__name__}.'
        )
    if len(rows) > MAX_IMPORT_ROWS:
        raise _too_many_rows(filename, len(rows))
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputValueError(
                f"{filename}: row {i + 1} is a JSON {type(row).__name__}, not an object "
                f"of column values."
            )
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame()


def _parse_npz(data: bytes, filename: str, latent_dim: int) -> pd.DataFrame:
    if data.startswith(b"\x93NUMPY"):
        raise InputValueError(
            f"could not read {filename} as npz: it is a single .npy array, not an .npz archive "
            f"of named arrays (z, objective, ...)."
        )
    if not data.startswith(b"PK"):
        raise InputValueError(
            f"could not read {filename} as npz: it is not a zip archive"
            + (
                " (it looks like a Python pickle, which is never loaded)."
                if data[:1] == b"\x80"
                else "."
            )
        )
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise InputValueError(
            f"{filename}: refused: it holds pickled data, which is never loaded ({exc})."
        ) from exc
    except Exception as exc:  # zipfile and numpy raise many types on damaged archives
        raise _could_not_read(filename, "npz", exc) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputValueError(
            f"could not read {filename} as npz: it is a single .npy array, not an .npz archive "
            f"of named arrays (z, objective, ...)."
        )
    with archive:
        try:
            headers = npz_headers(archive, filename, MAX_UNPACKED_BYTES)

            def pick(names: Sequence[str]) -> np.ndarray | None:
                for name in names:
                    if name in headers:
                        return np.asarray(archive[name])
                return None

            z = pick(_NPZ_KEYS["z"])
            objective = pick(_NPZ_KEYS["objective"])
            optional = {name: pick([name]) for name in _NPZ_OPTIONAL}
        except Exception as exc:  # zipfile and numpy raise many types on damaged archives
            if isinstance(exc, InputValueError):
                raise
            raise _could_not_read(filename, "npz", exc) from exc
    missing = [
        "/".join(names)
        for names, value in ((_NPZ_KEYS["z"], z), (_NPZ_KEYS["objective"], objective))
        if value is None
    ]
    if missing or z is None or objective is None:
        raise InputValueError(
            f"{filename} lacks the array(s) {', '.join(missing)}; an .npz run file needs z (or "
            f"latents, n x d) and objective (or y or scores, n); it has {sorted(headers)}."
        )
    if z.ndim == 1 and latent_dim == 1:
        z = z.reshape(-1, 1)
    if z.ndim != 2:
        raise InputValueError(f"{filename}: z must be an n x d array; got shape {z.shape}.")
    n = z.shape[0]
    if z.shape[1] != latent_dim:
        raise InputValueError(
            f"{filename}: z has {z.shape[1]} latent dimensions; the model has d={latent_dim}."
        )
    if n > MAX_IMPORT_ROWS:
        raise _too_many_rows(filename, n)
    if not np.issubdtype(z.dtype, np.number) or np.issubdtype(z.dtype, np.complexfloating):
        raise InputValueError(f"{filename}: z must hold real numbers; got dtype {z.dtype}.")
    columns: dict[str, Any] = {}
    for name, values in (("objective", objective), *optional.items()):
        if values is None:
            continue
        if values.ndim == 0 and name in ("run", "optimizer", "seed"):
            values = np.full(n, values.item(), dtype=values.dtype)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.shape != (n,):
            raise InputValueError(
                f"{filename}: {name} must have one entry per row of z ({n}); got shape "
                f"{values.shape}."
            )
        columns[name] = values
    if "step" not in columns:
        columns["step"] = np.arange(n)
    frame = pd.DataFrame(z.astype(np.float64), columns=latent_columns(latent_dim))
    for name, values in columns.items():
        frame[name] = values
    return frame


def _too_many_rows(filename: str, rows: int) -> InputValueError:
    return InputValueError(
        f"{filename} has {rows} rows; at most {MAX_IMPORT_ROWS} points are imported at once."
    )


def _where(filename: str, row: int, column: str) -> str:
    return f"{filename}: row {row + 1}, column {column!r}"


def _cell_number(cell: object) -> float:
    """A cell as a float; NaN when missing; ValueError when not a number."""
    if cell is None or cell is pd.NA or cell is pd.NaT:
        return math.nan
    if isinstance(cell, bool | np.bool_ | int | float | np.integer | np.floating):
        return float(cell)
    if isinstance(cell, str):
        text = cell.strip()
        return math.nan if text.lower() in _MISSING_TEXT else float(text)
    raise ValueError(cell)


def _numbers(series: pd.Series, column: str, filename: str) -> np.ndarray:
    """A column as float64 (missing cells NaN); refuses cells that are not numbers."""
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    cells = series.tolist()
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        try:
            out[i] = _cell_number(cell)
        except (ValueError, TypeError, OverflowError):
            raise InputValueError(
                f"{_where(filename, i, column)}: {_shown(cell)} is not a number."
            ) from None
    return out


def _integers(
    series: pd.Series, column: str, filename: str, *, default: int | None, minimum: int | None
) -> np.ndarray:
    values = _numbers(series, column, filename)
    missing = np.isnan(values)
    if default is not None:
        values = np.where(missing, float(default), values)
    elif missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise InputValueError(f"{_where(filename, row, column)}: the value is missing.")
    bad = ~np.isfinite(values) | (values != np.round(values))
    if minimum is not None:
        bad |= values < minimum
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        need = "a whole number" if minimum is None else f"a whole number >= {minimum}"
        raise InputValueError(
            f"{_where(filename, row, column)}: {_shown(series.iloc[row])} is not {need}."
        )
    if np.abs(values).max(initial=0) > 2**53:
        row = int(np.argmax(np.abs(values)))
        raise InputValueError(
            f"{_where(filename, row, column)}: {_shown(series.iloc[row])} is too big."
        )
    return values.astype(np.int64)


def _is_missing(cell: object) -> bool:
    if cell is None or cell is pd.NA:
        return True
    if isinstance(cell, float | np.floating):
        return bool(np.isnan(cell))
    return isinstance(cell, str) and cell.strip().lower() in _MISSING_TEXT


def _labels(series: pd.Series, default: str) -> list[str]:
    out = []
    for cell in series.tolist():
        if isinstance(cell, bytes | np.bytes_):
            cell = cell.decode("utf-8", errors="replace")
        if _is_missing(cell):
            out.append(default)
        elif isinstance(cell, float | np.floating) and float(cell).is_integer():
            out.append(str(int(cell)))
        else:
            out.append(str(cell).strip() or default)
    return out


def _validity(series: pd.Series, filename: str) -> pd.Series:
    """A ``valid`` column as pandas ``boolean`` (NA where the cell is empty)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean").reset_index(drop=True)
    out: list[bool | None] = []
    for i, cell in enumerate(series.tolist()):
        if _is_missing(cell):
            out.append(None)
            continue
        text = str(cell).strip().lower()
        if isinstance(cell, bool | np.bool_) or text in _TRUE_TEXT | _FALSE_TEXT:
            out.append(bool(cell) if isinstance(cell, bool | np.bool_) else text in _TRUE_TEXT)
        else:
            raise InputValueError(
                f"{_where(filename, i, 'valid')}: {cell!r} is not true/false, 1/0 or yes/no."
            )
    return pd.Series(out, dtype="boolean")


def _latents_from_columns(
    frame: pd.DataFrame, names: list[str], latent_dim: int, filename: str
) -> np.ndarray:
    numbers = sorted(int(name[2:]) for name in names)
    if numbers != list(range(len(numbers))):
        raise InputValueError(
            f"{filename}: latent columns must be z_0 .. z_{{d-1}} without gaps; found "
            f"{', '.join(f'z_{k}' for k in numbers)}."
        )
    if len(numbers) != latent_dim:
        raise InputValueError(
            f"{filename} has {len(numbers)} latent columns (z_0 .. z_{len(numbers) - 1}); the "
            f"model's latent size is d={latent_dim}."
        )
    columns = latent_columns(latent_dim)
    return np.column_stack([_numbers(frame[c], c, filename) for c in columns])


def _latents_from_lists(series: pd.Series, latent_dim: int, filename: str) -> np.ndarray:
    out = np.empty((len(series), latent_dim), dtype=np.float64)
    for i, cell in enumerate(series.tolist()):
        where = _where(filename, i, "z")
        value: Any = cell
        if isinstance(cell, str):
            try:
                value = json.loads(cell)
            except json.JSONDecodeError:
                raise InputValueError(
                    f"{where}: {cell!r} is not a JSON array of numbers like [0.1, -2]."
                ) from None
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise InputValueError(f"{where}: the latent is missing.")
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputValueError(f"{where}: {cell!r} is not a list of numbers.") from None
        if array.ndim != 1:
            raise InputValueError(f"{where}: expected a flat list of {latent_dim} numbers.")
        if array.size != latent_dim:
            raise InputValueError(
                f"{where}: the latent has {array.size} values; the model's latent size is "
                f"d={latent_dim}."
            )
        out[i] = array
    return out


def _validate(frame: pd.DataFrame, latent_dim: int, filename: str) -> pd.DataFrame:
    """Check a parsed file against the schema and return the raw runs frame."""
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.loc[:, ~frame.columns.duplicated()].reset_index(drop=True)
    n = len(frame)
    if n == 0:
        raise InputValueError(f"{filename} has no data rows.")
    if n > MAX_IMPORT_ROWS:
        raise _too_many_rows(filename, n)
    latent_names = [c for c in frame.columns if _LATENT_COLUMN.fullmatch(c)]
    missing = [c for c in ("step", "objective") if c not in frame.columns]
    if not latent_names and "z" not in frame.columns:
        missing.append(f"z_0 .. z_{latent_dim - 1} (or one list column z)")
    if missing:
        raise InputValueError(
            f"{filename} lacks the required column(s) {', '.join(missing)}. A run file needs "
            f"step, objective and the latent (z_0 .. z_{latent_dim - 1}, or one list column z); "
            f"its columns are: {', '.join(map(str, frame.columns)) or '(none)'}."
        )
    if latent_names:
        z = _latents_from_columns(frame, latent_names, latent_dim, filename)
        names = latent_columns(latent_dim)
    else:
        z = _latents_from_lists(frame["z"], latent_dim, filename)
        names = [f"z (element {k})" for k in range(latent_dim)]
    bad = ~np.isfinite(z) | (np.abs(z) > FLOAT32_MAX)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        value = z[row, col]
        problem = (
            f"{value:g}, beyond the +-{FLOAT32_MAX:.3g} that models decode in float32"
            if np.isfinite(value)
            else f"{'missing or NaN' if np.isnan(value) else 'infinite'}; every latent value "
            "must be a finite number"
        )
        raise InputValueError(
            f"{_where(filename, row, names[col].split(' ')[0])}: "
            f"{'' if latent_names else f'element {col} of '}the latent is {problem}."
        )
    steps = _integers(frame["step"], "step", filename, default=None, minimum=0)
    objective = _numbers(frame["objective"], "objective", filename)
    if np.isinf(objective).any():
        row = int(np.flatnonzero(np.isinf(objective))[0])
        raise InputValueError(
            f"{_where(filename, row, 'objective')}: {_shown(frame['objective'].iloc[row])} is "
            f"infinite; leave the cell empty (or NaN) for an invalid point."
        )
    default_run = Path(filename).stem or "upload"
    runs = _labels(frame["run"], default_run) if "run" in frame.columns else [default_run] * n
    optimizers = (
        _labels(frame["optimizer"], DEFAULT_OPTIMIZER)
        if "optimizer" in frame.columns
        else [DEFAULT_OPTIMIZER] * n
    )
    seeds = (
        _integers(frame["seed"], "seed", filename, default=0, minimum=None)
        if "seed" in frame.columns
        else np.zeros(n, dtype=np.int64)
    )
    keys = pd.DataFrame({"run": runs, "step": steps})
    if "index" in frame.columns and not frame["index"].map(_is_missing).all():
        index = _integers(frame["index"], "index", filename, default=None, minimum=0)
    else:
        index = keys.groupby(["run", "step"], sort=False).cumcount().to_numpy(np.int64)
    for column, values in (("optimizer", optimizers), ("seed", seeds)):
        per_run = pd.DataFrame({"run": runs, column: values})
        first = per_run.groupby("run", sort=False)[column].transform("first")
        differs = (first != per_run[column]).to_numpy()
        if differs.any():
            row = int(np.flatnonzero(differs)[0])
            raise InputValueError(
                f"{_where(filename, row, column)}: run {runs[row]!r} has {column} "
                f"{_shown(values[row])} here but {_shown(first.iloc[row])} on an earlier row; "
                f"a run has "
                f"one {column}."
            )
    keys["index"] = index
    repeated = keys.duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise InputValueError(
            f"{filename}: row {row + 1} repeats run {runs[row]!r}, step {steps[row]}, index "
            f"{index[row]} of an earlier row; each point needs its own (run, step, index)."
        )
    out = pd.DataFrame(
        {
            "run": runs,
            "optimizer": optimizers,
            "seed": seeds,
            "step": steps,
            "index": index,
        }
    )
    for k, name in enumerate(latent_columns(latent_dim)):
        out[name] = z[:, k]
    out["objective"] = objective
    if "valid" in frame.columns:
        valid = _validity(frame["valid"], filename)
        if not valid.isna().all():
            out["valid"] = valid
    if "wall_time" in frame.columns:
        out["wall_time"] = _numbers(frame["wall_time"], "wall_time", filename)
    return out


def read_runs(
    source: bytes | str | os.PathLike[str],
    *,
    fmt: str | None = None,
    latent_dim: int,
    filename: str | None = None,
) -> pd.DataFrame:
    """Read and check a run file (schema in the module docstring).

    Args:
        source: the file's bytes, or its path.
        fmt: ``csv``, ``parquet``, ``json`` or ``npz``; default from the file name's suffix.
        latent_dim: the model's latent size `d`; the file's latents must have it.
        filename: name used for the format, the default run name and in messages (default:
            the path's name, or ``upload`` for bytes).

    Returns:
        One row per point, columns ``run``, ``optimizer``, ``seed``, ``step``, ``index``,
        ``z_0`` .. ``z_{d-1}``, ``objective``, then ``valid`` (pandas ``boolean``, NA where
        the file leaves it empty) and ``wall_time`` only where the file has them. Rows stay
        in file order.

    Raises:
        InputValueError: the file is too big, unreadable, empty, or breaks the schema (the
            message names the data row, from 1, and the column).
        InputTypeError: `source` is neither bytes nor a path.
    """
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise InputValueError(f"latent_dim must be a positive int; got {latent_dim!r}.")
    filename = _filename(source, filename)
    fmt = file_format(filename, fmt)
    data = _source_bytes(source, filename)
    if not data:
        raise InputValueError(f"{filename} is empty.")
    if fmt == "csv":
        frame = _parse_csv(data, filename)
    elif fmt == "parquet":
        frame = _parse_parquet(data, filename)
    elif fmt == "json":
        frame = _parse_json(data, filename)
    else:
        frame = _parse_npz(data, filename, latent_dim)
    return _validate(frame, latent_dim, filename)


# --------------------------------------------------------------------------------------------
# Importing
# --------------------------------------------------------------------------------------------


def import_runs(
    store: RunStore,
    source: bytes | str | os.PathLike[str],
    *,
    model: LatentModel,
    objective: str,
    fmt: str | None = None,
    filename: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[StoredRun]:
    """Import a run file into the store, scoring every point on `model`.

    Every point is decoded and evaluated with
    :func:`~scales_viz.scoring.evaluate_points` (decoded object, validity, ScaLES,
    likelihood). The file's objective values are kept as they are (NaN stays NaN even where
    the model finds the point valid); the file's ``valid`` is kept where given, the model's
    validity used elsewhere. All runs of the file are stored in one transaction: all or none.

    Args:
        store: where to keep the runs.
        source: the file's bytes, or its path.
        model: the loaded :class:`~scales_viz.models.VAEModel` the runs belong to.
        objective: the task (one of ``model.objectives``) the runs optimised.
        fmt: as for :func:`read_runs`.
        filename: as for :func:`read_runs`.
        progress: called as ``progress(done, n)`` while points are scored.

    Returns:
        The stored runs (status ``imported``), in order of first appearance in the file.

    Raises:
        InputValueError: unknown objective, or a file :func:`read_runs` refuses.
    """
    if objective not in model.objectives:
        raise InputValueError(
            f"model {model.name!r} has no objective {objective!r}; "
            f"it has {sorted(model.objectives)}."
        )
    filename = _filename(source, filename)
    fmt = file_format(filename, fmt)
    d = int(model.latent_dim)
    raw = read_runs(source, fmt=fmt, latent_dim=d, filename=filename)
    z = np.array(z_matrix(raw), dtype=np.float64)  # a writable copy for torch
    evaluated = evaluate_points(model, objective, z, progress=progress)
    valid = evaluated.valid.copy()
    if "valid" in raw.columns:
        given = raw["valid"].notna().to_numpy()
        valid[given] = raw["valid"][given].to_numpy(dtype=bool)
    points = raw[["run", "step", "index", *latent_columns(d), "objective"]].copy()
    points["scales"] = evaluated.scales
    points["likelihood"] = evaluated.likelihood
    points["valid"] = valid
    points["decoded"] = pd.Series(evaluated.decoded, dtype=object)
    points["wall_time"] = raw["wall_time"] if "wall_time" in raw.columns else math.nan
    items: list[tuple[NewRun, pd.DataFrame]] = []
    for label, group in points.groupby("run", sort=False):
        first = raw.loc[group.index[0]]
        new = NewRun(
            model=str(model.name),
            task=objective,
            optimizer=str(first["optimizer"]),
            seed=int(first["seed"]),
            latent_dim=d,
            name=str(label),
            settings={"source": filename, "format": fmt},
        )
        items.append((new, group.drop(columns="run")))
    return store.import_runs_atomic(items)


# --------------------------------------------------------------------------------------------
# Exporting
# --------------------------------------------------------------------------------------------


def _json_cell(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def label_runs(points: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """`points` with each run id replaced by ``"NAME [first 8 of id]"`` (unique and readable),
    so that an exported file imports back as runs named after the originals."""
    out = points.copy()
    out["run"] = [f"{names.get(str(r), str(r))} [{str(r)[:8]}]" for r in out["run"]]
    return out


def export_runs(points: pd.DataFrame, fmt: str) -> bytes:
    """A points table as a file that :func:`read_runs` reads back.

    Args:
        points: a points table (see :mod:`scales_viz.lso.records`), e.g. from
            :meth:`RunStore.points <scales_viz.lso.store.RunStore.points>`.
        fmt: ``csv``, ``parquet`` or ``json`` (a JSON array of row objects; NaN is written
            as ``null``, infinities as ``Infinity``).

    Returns:
        The file's bytes (UTF-8 text for CSV and JSON).

    Raises:
        InputValueError: unknown format.
        InputTypeError: `points` is not a DataFrame.
    """
    if not isinstance(points, pd.DataFrame):
        raise InputTypeError(f"points must be a pandas DataFrame; got {type(points).__name__}.")
    kind = fmt.strip().lower().lstrip(".")
    kind = _SUFFIXES.get(kind, kind)
    if kind not in EXPORT_FORMATS:
        raise InputValueError(f"cannot export runs as {fmt!r}; use one of {EXPORT_FORMATS}.")
    frame = points.reset_index(drop=True)
    if kind == "csv":
        # Text quoted throughout: a bare "\r" in decoded text would otherwise end the row.
        text = frame.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
        return text.encode("utf-8")
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if "decoded" in frame.columns:
            frame["decoded"] = frame["decoded"].astype(object)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return buffer.getvalue()
    names = [str(c) for c in frame.columns]
    columns = [[_json_cell(v) for v in frame[c].tolist()] for c in frame.columns]
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    return json.dumps(rows, ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Importing the field's own run files
# --------------------------------------------------------------------------------------------

#: What the settings of a run placed by the encoder say about its latents.
ENCODED_NOTE = (
    "placed by the model's encoder (encoder means of the proposed strings), not the "
    "optimiser's own latents: positions show where this model puts those objects"
)


#: Most training strings of a round's GP data the model encodes to check it is the round's.
GP_ANCHOR_ROWS = 32
#: Tolerances of that check: float32 encoder means, perhaps computed on another device.
GP_ANCHOR_ATOL = 1e-3
GP_ANCHOR_RTOL = 1e-3
#: Most GP data files read with one results.npz.
MAX_GP_FILES = 1000
_OWN_NOTE = "the optimiser's own"


def _encodable(model: LatentModel, objects: Sequence[str]) -> np.ndarray:
    """Which strings the model's encoder can take (known tokens, at most `L` of them)."""
    from scales_viz.models.codecs import SequenceCodec

    codec = getattr(model, "codec", None)
    if not isinstance(codec, SequenceCodec):
        raise InputValueError(
            f"model {model.name!r} does not read strings (its data are not sequences); the "
            "field's run files carry strings, so they import into sequence models only."
        )
    known = set(codec.vocab[:-1])
    ok = np.zeros(len(objects), dtype=bool)
    for i, text in enumerate(objects):
        if not text:
            continue
        try:
            tokens = codec.tokenize(text)
        except Exception:
            continue
        ok[i] = len(tokens) <= codec.seq_len and all(t in known for t in tokens)
    return ok


def weighted_retraining_folder(folder: str | os.PathLike[str]) -> tuple[Path, dict[str, Path]]:
    """A weighted-retraining run folder (its ``--result_root``): its ``results.npz`` and its
    GP data files (``gp/iter{N}/data.npz``, ``opt{i}/data.npz``) by their relative paths.

    Raises:
        InputValueError: no ``results.npz`` in the folder, or too many GP files.
    """
    from scales_viz.lso.field import is_weighted_retraining_gp_file

    root = Path(folder)
    results = root / "results.npz"
    if not results.is_file():
        raise InputValueError(
            f"{root} is a folder without a results.npz; give weighted-retraining's result "
            "folder (--result_root) or its results.npz."
        )
    found: dict[str, Path] = {}
    for pattern in ("gp/iter*/data.npz", "opt*/data.npz"):
        for path in sorted(root.glob(pattern)):
            name = path.relative_to(root).as_posix()
            if path.is_file() and is_weighted_retraining_gp_file(name):
                found[name] = path
    if len(found) > MAX_GP_FILES:
        raise InputValueError(
            f"{root} holds {len(found)} GP data files; at most {MAX_GP_FILES} are read."
        )
    return results, found


def _field_source(
    source: bytes | str | os.PathLike[str],
    fmt: str,
    gp_data: Mapping[str, bytes | str | os.PathLike[str]] | None,
) -> tuple[bytes | str | os.PathLike[str], dict[str, bytes]]:
    """The run file, and the GP data files' bytes (from a run folder and `gp_data`)."""
    files: dict[str, bytes | str | os.PathLike[str]] = {}
    if isinstance(source, str | os.PathLike) and Path(source).is_dir():
        if fmt != "weighted-retraining":
            raise InputValueError(
                f"{source} is a folder; only weighted-retraining runs are read from their "
                f"folder (results.npz and gp/iter*/data.npz); give the {fmt} file itself."
            )
        source, found = weighted_retraining_folder(source)
        files.update(found)
    files.update(gp_data or {})
    if files and fmt != "weighted-retraining":
        raise InputValueError(
            f"GP data files go with weighted-retraining's results.npz; got them with {fmt}."
        )
    if len(files) > MAX_GP_FILES:
        raise InputValueError(f"{len(files)} GP data files; at most {MAX_GP_FILES} are read.")
    read = {}
    for name, file in files.items():
        refuse_pickle(name)
        read[name] = _source_bytes(file, name)
        refuse_pickle(name, read[name])
    return source, read


def _anchor_note(model: EncodingModel, gp: GPRound) -> str:
    """Why the loaded model is not the round's ("" when its encoder puts the round's GP
    training strings where the round's model put them)."""
    strings = list(gp.anchor_strings)
    picked = np.flatnonzero(_encodable(model, strings))[:GP_ANCHOR_ROWS]
    if gp.anchor_latents is None or picked.size == 0:
        return (
            "the model cannot encode the round's GP training strings, so it cannot be checked "
            f"to be the model retrained in round {gp.round}"
        )
    encoded = model.encode([strings[i] for i in picked]).double().numpy()
    stored = gp.anchor_latents[picked]
    gap = np.abs(encoded - stored)
    if (gap <= GP_ANCHOR_ATOL + GP_ANCHOR_RTOL * np.abs(stored)).all():
        return ""
    return (
        f"its latents are the model retrained in round {gp.round}'s; the loaded model is "
        f"another (its encoder puts the round's GP training strings up to {gap.max():.3g} "
        "from where that model put them)"
    )


def _gp_latents(
    model: EncodingModel, frame: pd.DataFrame, rounds: list[GPRound]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`n x d` own latents from the rounds whose model is the loaded one, which rows have
    them, and one note per round."""
    z = np.full((len(frame), int(model.latent_dim)), np.nan)
    own = np.zeros(len(frame), dtype=bool)
    notes = []
    for gp in rounds:
        note = gp.note or _anchor_note(model, gp)
        if gp.latents is not None and not note:
            z[gp.rows], own[gp.rows] = gp.latents, True
            notes.append(f"round {gp.round} ({gp.source}): the optimiser's own latents")
        else:
            notes.append(f"round {gp.round} ({gp.source}): placed by the encoder: {note}")
    return z, own, notes


def _field_run(
    model: LatentModel,
    objective: str,
    frame: pd.DataFrame,
    points: pd.DataFrame,
    *,
    own: bool,
    settings: dict[str, Any],
) -> tuple[NewRun, pd.DataFrame]:
    label = str(frame["run"].iloc[0])
    new = NewRun(
        model=str(model.name),
        task=objective,
        optimizer=str(frame["optimizer"].iloc[0]),
        seed=int(frame["seed"].iloc[0]),
        latent_dim=int(model.latent_dim),
        name=label if own else f"{label} (encoded)",
        settings=settings,
    )
    return new, points


def import_field_runs(
    store: RunStore,
    source: bytes | str | os.PathLike[str],
    *,
    model: EncodingModel,
    objective: str,
    fmt: str,
    filename: str | None = None,
    text_column: str | None = None,
    objective_column: str | None = None,
    gp_data: Mapping[str, bytes | str | os.PathLike[str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[StoredRun], dict[str, Any]]:
    """Import a run file written by the field's own code (:mod:`scales_viz.lso.field`).

    Rows with the optimiser's own latents keep them: weighted-retraining's
    ``opt_latent_points`` of the model's width, or the latents in the run's per-round GP data
    (``gp/iter{N}/data.npz``) of the rounds whose retrained model is the loaded one (see the
    :mod:`~scales_viz.lso.field` docstring for the matching and the check). The others are
    placed by the model's encoder (its means), and the stored run says so
    (``settings["latents"]``); when both kinds occur they are stored as two runs, the encoded
    one named "... (encoded)". Strings the encoder cannot take (unknown tokens, longer than
    the model's `L`, empty) are skipped and counted. Every placed point is decoded and scored
    as in :func:`import_runs`; the file's objective values are kept, and validity is the
    file's where it has a ``valid`` column, otherwise the model's rule applied to the
    proposed string itself.

    Args:
        source: the run file's bytes or path; for weighted-retraining also its run folder
            (``--result_root``: its ``results.npz`` and GP data files are read).
        gp_data: weighted-retraining GP data files (bytes or paths) by their paths relative to
            the run folder, e.g. ``{"gp/iter0/data.npz": ...}``.

    Returns:
        The stored runs, and a summary: ``rows``, ``placed``, ``skipped``, ``latents``
        (``"own"``, ``"encoded"``, or ``"mixed"`` when some rows have their own), ``own_rows``,
        ``round_trip`` (share of encoded strings that decode back to themselves; NaN when
        none is encoded), ``first_skipped`` (a string, or "") and ``gp`` (one note per GP
        data file: used, or why not).

    Raises:
        InputValueError: unknown objective or format, a file that does not read as its
            format, a model that does not read strings, or no row that can be placed.
    """
    from scales_viz.lso.field import match_weighted_retraining_gp, read_field_runs

    if objective not in model.objectives:
        raise InputValueError(
            f"model {model.name!r} has no objective {objective!r}; "
            f"it has {sorted(model.objectives)}."
        )
    source, gp_files = _field_source(source, fmt, gp_data)
    filename = _filename(source, filename)
    refuse_pickle(filename)
    data = _source_bytes(source, filename)
    if not data:
        raise InputValueError(f"{filename} is empty.")
    refuse_pickle(filename, data)
    d = int(model.latent_dim)
    frame = read_field_runs(
        data,
        fmt,
        filename=filename,
        latent_dim=d,
        text_column=text_column,
        objective_column=objective_column,
    )
    if len(frame) > MAX_IMPORT_ROWS:
        raise _too_many_rows(filename, len(frame))
    gp_notes: list[str] = []
    if "z_0" in frame.columns:
        z_own = frame[latent_columns(d)].to_numpy(dtype=np.float64)
        own = np.ones(len(frame), dtype=bool)
        if gp_files:
            gp_notes = [f"{filename} carries opt_latent_points; GP data files not read"]
    else:
        rounds, gp_notes = (
            match_weighted_retraining_gp(frame, gp_files, latent_dim=d) if gp_files else ([], [])
        )
        z_own, own, round_notes = _gp_latents(model, frame, rounds)
        gp_notes = round_notes + gp_notes
    objects = frame["object"].tolist()
    keep = own.copy()
    if not own.all():
        keep |= _encodable(model, objects)
    if not keep.any():
        raise InputValueError(
            f"{filename}: none of its {len(frame)} strings can be placed on model "
            f"{model.name!r} (unknown tokens or longer than the model takes); first: "
            f"{objects[0][:80]!r}."
        )
    skipped = [o for o, k in zip(objects, keep, strict=True) if not k]
    frame, z, own = frame[keep].reset_index(drop=True), z_own[keep], own[keep]
    kept_objects = frame["object"].tolist()
    if not own.all():
        encode = [o for o, mine in zip(kept_objects, own, strict=True) if not mine]
        z[~own] = model.encode(encode).double().numpy()
    evaluated = evaluate_points(model, objective, z, progress=progress)
    if "valid" in frame.columns and frame["valid"].notna().any():
        valid = frame["valid"].fillna(False).to_numpy(dtype=bool)
    else:
        valid = np.asarray(model.validity(kept_objects), dtype=bool)
    back = np.array([a == b for a, b in zip(evaluated.decoded, kept_objects, strict=True)])
    round_trip = float(np.mean(back[~own])) if not own.all() else math.nan
    points = frame[["step", "index"]].copy()
    for k, name in enumerate(latent_columns(d)):
        points[name] = z[:, k]
    points["objective"] = frame["objective"].to_numpy(dtype=np.float64)
    points["scales"] = evaluated.scales
    points["likelihood"] = evaluated.likelihood
    points["valid"] = valid
    points["decoded"] = pd.Series(evaluated.decoded, dtype=object)
    points["wall_time"] = math.nan
    summary: dict[str, Any] = {
        "rows": len(objects),
        "placed": len(kept_objects),
        "skipped": len(skipped),
        "latents": "own" if own.all() else "encoded" if not own.any() else "mixed",
        "own_rows": int(own.sum()),
        "round_trip": round_trip,
        "first_skipped": skipped[0][:80] if skipped else "",
        "gp": gp_notes,
    }
    base: dict[str, Any] = {"source": filename, "format": fmt, "skipped": len(skipped)}
    if gp_notes:
        base["gp"] = gp_notes
    items = []
    if own.any():
        settings = {**base, "latents": _OWN_NOTE}
        items.append(_field_run(model, objective, frame, points[own], own=True, settings=settings))
    if not own.all():
        settings = {**base, "latents": ENCODED_NOTE, "round_trip": round(round_trip, 4)}
        items.append(
            _field_run(model, objective, frame, points[~own], own=False, settings=settings)
        )
    return store.import_runs_atomic(items), summary
