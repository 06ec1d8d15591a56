"""The durable run store: LSO runs and their evaluated points in one SQLite file.

Runs made in the app, by the command line or imported from files are kept here so that they
survive restarts and can be compared later. The store is one SQLite database (default
``~/.local/share/scales-viz/runs.sqlite``; see :func:`default_store_path`) in WAL mode:

* every public method opens its own short-lived connection, so one :class:`RunStore` can be
  used from several threads, and several processes can use the same file (the app reads while
  an optimiser writes);
* a step is written in one transaction (:meth:`RunStore.add_step`), so a process killed
  mid-run leaves every step it finished and no part of the step it was writing; the next
  :meth:`RunStore.runs` marks such a run ``interrupted``;
* an import is one transaction (:meth:`RunStore.import_runs_atomic`): all its runs or none;
* a busy database is waited for (30 s busy timeout) and retried with backoff, so concurrent
  use never surfaces "database is locked".

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`)::

    runs(id TEXT PRIMARY KEY, name TEXT, model TEXT, task TEXT, optimizer TEXT,
         settings TEXT (JSON), seed INTEGER, created TEXT (UTC ISO 8601), status TEXT,
         reason TEXT, latent_dim INTEGER, pid INTEGER, host TEXT)
    points(run TEXT REFERENCES runs(id) ON DELETE CASCADE, step INTEGER, idx INTEGER,
           z BLOB (d float64 values, little-endian), objective REAL, scales REAL,
           likelihood REAL, valid INTEGER, decoded TEXT, wall_time REAL,
           PRIMARY KEY (run, step, idx))

SQLite stores a NaN ``REAL`` as ``NULL``; the float columns read ``NULL`` back as NaN.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from scales_viz.errors import InputValueError, ScalesVizError
from scales_viz.lso.records import (
    RunInfo,
    RunStatus,
    Step,
    empty_points_frame,
    latent_columns,
    z_matrix,
)

__all__ = [
    "INTERRUPTED_REASON",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "NewRun",
    "RunStore",
    "StoreError",
    "StoredRun",
    "default_store_path",
]

#: Environment variable naming the store file (overrides the default location).
STORE_ENV = "SCALES_VIZ_STORE"
#: The schema version written to ``PRAGMA user_version``.
SCHEMA_VERSION = 1
#: Seconds a connection waits for a lock held by another connection.
BUSY_TIMEOUT_S = 30.0
#: Extra attempts after a "database is locked" error, with exponential backoff.
LOCK_RETRIES = 5
LOCK_BACKOFF_S = 0.05
#: The reason given to runs whose process died before they finished.
INTERRUPTED_REASON = "the process running it ended before it finished; completed steps are kept"

_T = TypeVar("_T")

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        model TEXT NOT NULL,
        task TEXT NOT NULL,
        optimizer TEXT NOT NULL,
        settings TEXT NOT NULL,
        seed INTEGER NOT NULL,
        created TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        latent_dim INTEGER NOT NULL,
        pid INTEGER,
        host TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS runs_created ON runs (created)",
    """
    CREATE TABLE IF NOT EXISTS points (
        run TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        z BLOB NOT NULL,
        objective REAL,
        scales REAL,
        likelihood REAL,
        valid INTEGER NOT NULL,
        decoded TEXT,
        wall_time REAL,
        PRIMARY KEY (run, step, idx)
    )
    """,
)

_RUN_COLUMNS = (
    "id, name, model, task, optimizer, settings, seed, created, status, reason, "
    "latent_dim, pid, host"
)
_INSERT_RUN = f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 13)})"
_INSERT_POINT = (
    "INSERT INTO points (run, step, idx, z, objective, scales, likelihood, valid, decoded, "
    "wall_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_STATUSES = {status.value for status in RunStatus}


class StoreError(ScalesVizError, RuntimeError):
    """The run store cannot be used: not a store, a newer schema, locked for too long, I/O."""


@dataclass
class StoredRun(RunInfo):
    """A run as the store keeps it: :class:`RunInfo` plus where and how it was made.

    Attributes:
        latent_dim: the latent size `d` of its points.
        pid: id of the process that created it (None for imported runs).
        host: host name of that process ("" for imported runs).
    """

    latent_dim: int = 0
    pid: int | None = None
    host: str = ""


@dataclass
class NewRun:
    """The metadata of a run to import (see :meth:`RunStore.import_runs_atomic`).

    Attributes:
        model: model name.
        task: objective name.
        optimizer: optimiser name (as shown in legends).
        seed: the run's seed.
        latent_dim: `d`.
        name: display name (default ``"{optimizer} seed {seed}"``).
        settings: JSON-serialisable settings (e.g. where the run was imported from).
    """

    model: str
    task: str
    optimizer: str
    seed: int
    latent_dim: int
    name: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


def default_store_path() -> Path:
    """Where the run store lives unless told otherwise.

    Returns:
        ``$SCALES_VIZ_STORE`` if set; else ``$XDG_DATA_HOME/scales-viz/runs.sqlite`` if
        ``XDG_DATA_HOME`` is set; else ``~/.local/share/scales-viz/runs.sqlite``.
    """
    explicit = os.environ.get(STORE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(data_home).expanduser() if data_home else Path.home() / ".local" / "share"
    return base / "scales-viz" / "runs.sqlite"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _json_default(value: object) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _settings_json(settings: Mapping[str, Any]) -> str:
    if not isinstance(settings, Mapping):
        raise InputValueError(f"run settings must be a mapping; got {type(settings).__name__}.")
    try:
        return json.dumps(dict(settings), sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise InputValueError(f"run settings must be JSON-serialisable: {exc}.") from exc


def _status_value(status: RunStatus | str) -> str:
    value = status.value if isinstance(status, RunStatus) else str(status)
    if value not in _STATUSES:
        raise InputValueError(f"unknown run status {value!r}; expected one of {sorted(_STATUSES)}.")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return int(value)
        raise InputValueError(f"{what} must be an int; got {value!r}.")
    return int(value)


def _float_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _pid_alive(pid: int) -> bool:
    """Whether process `pid` on this host may still be running (True when unsure)."""
    if pid <= 0 or os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, owned by someone else.
        return True
    return True


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _decoded_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value if isinstance(value, str) else str(value)


class RunStore:
    """LSO runs and their points in one SQLite file (see the module docstring).

    Safe to share between threads and processes: every method uses its own connection.

    Args:
        path: the database file (created with its parent folders if missing); default
            :func:`default_store_path`.

    Raises:
        StoreError: the file is not a run store, has a newer schema, or cannot be opened.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder of the run store {self.path}: {exc}"
            ) from exc
        self._host = socket.gethostname()
        self._retrying(self._initialise)

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # ----------------------------------------------------------------------------------------
    # Connections and transactions
    # ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction; ``BEGIN IMMEDIATE`` for writes (takes the write lock up front)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _retrying(self, operation: Callable[[], _T]) -> _T:
        """Run `operation` (a whole transaction), retrying it while the database is locked."""
        for attempt in range(LOCK_RETRIES + 1):
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"run store {self.path}: {exc}") from exc
                if attempt == LOCK_RETRIES:
                    raise StoreError(
                        f"the run store {self.path} stayed locked by another process "
                        f"(waited {BUSY_TIMEOUT_S:g} s, {LOCK_RETRIES + 1} times): {exc}"
                    ) from exc
                time.sleep(LOCK_BACKOFF_S * 2**attempt)
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    f"{self.path} is not a usable scales-viz run store: {exc}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _initialise(self) -> None:
        with self._connect() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            self._check_version(version)
            conn.execute("PRAGMA journal_mode = WAL")
            if version == SCHEMA_VERSION:
                return
        with self._transaction(write=True) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            self._check_version(version)
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the run store {self.path} has schema version {version}, newer than this "
                f"scales-viz understands ({SCHEMA_VERSION}); upgrade scales-viz."
            )

    # ----------------------------------------------------------------------------------------
    # Reading
    # ----------------------------------------------------------------------------------------

    def _row_to_run(self, row: Sequence[Any]) -> StoredRun:
        (id_, name, model, task, optimizer, settings, seed, created, status, reason, d, pid,
         host) = row  # fmt: skip
        return StoredRun(
            id=id_,
            name=name,
            model=model,
            task=task,
            optimizer=optimizer,
            settings=json.loads(settings),
            seed=int(seed),
            created=created,
            status=status,
            reason=reason or "",
            latent_dim=int(d),
            pid=None if pid is None else int(pid),
            host=host or "",
        )

    def _missing(self, run_id: str) -> InputValueError:
        return InputValueError(f"no run {run_id!r} in {self.path}")

    def _reconcile(self, run_id: str | None = None) -> None:
        """Mark ``running`` runs whose process on this host has died as ``interrupted``."""

        def read() -> list[tuple[str, int]]:
            with self._connect() as conn:
                sql = "SELECT id, pid FROM runs WHERE status = ? AND host = ? AND pid IS NOT NULL"
                args: tuple[Any, ...] = (RunStatus.RUNNING.value, self._host)
                if run_id is not None:
                    sql += " AND id = ?"
                    args += (run_id,)
                return [(str(r[0]), int(r[1])) for r in conn.execute(sql, args)]

        dead = [id_ for id_, pid in self._retrying(read) if not _pid_alive(pid)]
        if not dead:
            return

        def write() -> None:
            with self._transaction(write=True) as conn:
                conn.executemany(
                    "UPDATE runs SET status = ?, reason = ? WHERE id = ? AND status = ?",
                    [
                        (RunStatus.INTERRUPTED.value, INTERRUPTED_REASON, id_, "running")
                        for id_ in dead
                    ],
                )

        with contextlib.suppress(StoreError):  # best effort: a read-only store still reads
            self._retrying(write)

    def runs(self, model: str | None = None) -> list[StoredRun]:
        """Every run (of `model`, if given), newest first.

        Runs still marked ``running`` whose process (on this host) has ended are first marked
        ``interrupted`` with :data:`INTERRUPTED_REASON`.

        Args:
            model: only runs of this model.

        Returns:
            The runs, newest first.
        """
        self._reconcile()

        def read() -> list[StoredRun]:
            with self._connect() as conn:
                sql = f"SELECT {_RUN_COLUMNS} FROM runs"
                args: tuple[Any, ...] = ()
                if model is not None:
                    sql += " WHERE model = ?"
                    args = (model,)
                sql += " ORDER BY created DESC, rowid DESC"
                return [self._row_to_run(row) for row in conn.execute(sql, args)]

        return self._retrying(read)

    def run(self, run_id: str) -> StoredRun:
        """One run's metadata (reconciled like :meth:`runs`).

        Raises:
            InputValueError: no such run.
        """
        self._reconcile(run_id)

        def read() -> StoredRun:
            with self._connect() as conn:
                row = conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
                ).fetchone()
            if row is None:
                raise self._missing(run_id)
            return self._row_to_run(row)

        return self._retrying(read)

    def points(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """The points table of some runs (layout in :mod:`scales_viz.lso.records`).

        Args:
            run_ids: the runs, in the order wanted (repeats are dropped).

        Returns:
            Rows ordered by run (as given), step, then index; read in one snapshot.

        Raises:
            InputValueError: a run is missing, or the runs have different latent sizes.
        """
        if isinstance(run_ids, str):
            raise InputValueError("points() takes a sequence of run ids, not a single id.")
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return empty_points_frame(0)

        def read() -> pd.DataFrame:
            with self._transaction(write=False) as conn:
                infos: list[tuple[str, str, int, int]] = []
                for run_id in ids:
                    row = conn.execute(
                        "SELECT id, optimizer, seed, latent_dim FROM runs WHERE id = ?", (run_id,)
                    ).fetchone()
                    if row is None:
                        raise self._missing(run_id)
                    infos.append((str(row[0]), str(row[1]), int(row[2]), int(row[3])))
                dims = {info[3] for info in infos}
                if len(dims) > 1:
                    sizes = ", ".join(f"{info[0]}: d={info[3]}" for info in infos)
                    raise InputValueError(
                        f"runs with different latent sizes cannot share a points table ({sizes})."
                    )
                d = dims.pop()
                frames = []
                for run_id, optimizer, seed, _ in infos:
                    rows = conn.execute(
                        "SELECT step, idx, z, objective, scales, likelihood, valid, decoded, "
                        "wall_time FROM points WHERE run = ? ORDER BY step, idx",
                        (run_id,),
                    ).fetchall()
                    if rows:
                        frames.append(self._points_frame(rows, run_id, optimizer, seed, d))
            if not frames:
                return empty_points_frame(d)
            return pd.concat(frames, ignore_index=True)

        return self._retrying(read)

    def _points_frame(
        self, rows: list[Any], run_id: str, optimizer: str, seed: int, d: int
    ) -> pd.DataFrame:
        n = len(rows)
        columns = list(zip(*rows, strict=True))
        blob = b"".join(columns[2])
        if len(blob) != n * d * 8:
            raise StoreError(
                f"run {run_id!r} in {self.path} has latents of the wrong size (expected d={d})."
            )
        z = np.frombuffer(blob, dtype="<f8").astype(np.float64).reshape(n, d)
        frame = pd.DataFrame(z, columns=latent_columns(d))
        frame.insert(0, "run", run_id)
        frame.insert(1, "optimizer", optimizer)
        frame.insert(2, "seed", seed)
        frame.insert(3, "step", np.array(columns[0], dtype=np.int64))
        frame.insert(4, "index", np.array(columns[1], dtype=np.int64))
        for position, name in ((3, "objective"), (4, "scales"), (5, "likelihood")):
            frame[name] = np.array([_nan_if_none(v) for v in columns[position]], np.float64)
        frame["valid"] = np.array(columns[6], dtype=np.int64).astype(bool)
        frame["decoded"] = pd.Series(list(columns[7]), dtype=object)
        frame["wall_time"] = np.array([_nan_if_none(v) for v in columns[8]], np.float64)
        return frame

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` of the file ("ok" when sound)."""

        def check() -> str:
            with self._connect() as conn:
                return "\n".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))

        return self._retrying(check)

    # ----------------------------------------------------------------------------------------
    # Writing
    # ----------------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        model: str,
        task: str,
        optimizer: str,
        settings: Mapping[str, Any],
        seed: int,
        latent_dim: int,
        name: str | None = None,
        status: RunStatus = RunStatus.RUNNING,
    ) -> StoredRun:
        """Start a run owned by this process.

        Args:
            model: model name.
            task: objective name.
            optimizer: optimiser name.
            settings: the optimiser's settings (JSON-serialisable).
            seed: the run's seed.
            latent_dim: `d` of its points.
            name: display name (default ``"{optimizer} seed {seed}"``).
            status: initial status.

        Returns:
            The stored run (id ``uuid4().hex``, UTC creation time, this pid and host).

        Raises:
            InputValueError: settings not JSON-serialisable, bad seed, latent size or status.
        """
        info = self._new_run_info(
            NewRun(
                model=model,
                task=task,
                optimizer=optimizer,
                seed=seed,
                latent_dim=latent_dim,
                name=name,
                settings=settings,
            ),
            status=_status_value(status),
            pid=os.getpid(),
            host=self._host,
        )

        def write() -> None:
            with self._transaction(write=True) as conn:
                conn.execute(_INSERT_RUN, self._run_row(info))

        self._retrying(write)
        return info

    def _new_run_info(self, new: NewRun, *, status: str, pid: int | None, host: str) -> StoredRun:
        seed = _int(new.seed, "seed")
        d = _int(new.latent_dim, "latent_dim")
        if d < 1:
            raise InputValueError(f"latent_dim must be at least 1; got {d}.")
        settings_text = _settings_json(new.settings)
        name = new.name if new.name is not None else f"{new.optimizer} seed {seed}"
        return StoredRun(
            id=uuid.uuid4().hex,
            name=str(name),
            model=str(new.model),
            task=str(new.task),
            optimizer=str(new.optimizer),
            settings=json.loads(settings_text),
            seed=seed,
            created=_now(),
            status=status,
            reason="",
            latent_dim=d,
            pid=pid,
            host=host,
        )

    @staticmethod
    def _run_row(info: StoredRun) -> tuple[Any, ...]:
        return (
            info.id,
            info.name,
            info.model,
            info.task,
            info.optimizer,
            json.dumps(info.settings, sort_keys=True),
            info.seed,
            info.created,
            info.status,
            info.reason,
            info.latent_dim,
            info.pid,
            info.host or None,
        )

    def _latent_dim(self, conn: sqlite3.Connection, run_id: str) -> int:
        row = conn.execute("SELECT latent_dim FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._missing(run_id)
        return int(row[0])

    def add_step(self, run_id: str, step: Step) -> None:
        """Append one evaluated step to a run, in one transaction (all its points or none).

        Raises:
            InputValueError: no such run, the step's latent size is not the run's, or the run
                already has this step number.
        """
        z = np.ascontiguousarray(step.z, dtype="<f8")
        rows = [
            (
                run_id,
                step.step,
                i,
                z[i].tobytes(),
                _float_or_none(float(step.objective[i])),
                _float_or_none(float(step.scales[i])),
                _float_or_none(float(step.likelihood[i])),
                int(bool(step.valid[i])),
                _decoded_text(step.decoded[i]),
                _float_or_none(step.wall_time),
            )
            for i in range(step.size)
        ]

        def write() -> None:
            with self._transaction(write=True) as conn:
                d = self._latent_dim(conn, run_id)
                if z.shape[1] != d:
                    raise InputValueError(
                        f"step {step.step} has latent size {z.shape[1]}; run {run_id!r} has "
                        f"latent_dim {d}."
                    )
                try:
                    conn.executemany(_INSERT_POINT, rows)
                except sqlite3.IntegrityError as exc:
                    raise InputValueError(
                        f"run {run_id!r} already has step {step.step}: {exc}"
                    ) from exc

        self._retrying(write)

    def recorder(self, run_id: str) -> Callable[[Step], None]:
        """A callback for optimisers: ``recorder(run_id)(step)`` stores the step.

        Raises:
            InputValueError: no such run (checked now, not at the first step).
        """
        self.run(run_id)
        lock = threading.Lock()

        def record(step: Step) -> None:
            with lock:
                self.add_step(run_id, step)

        return record

    def finish_run(self, run_id: str, status: RunStatus | str, reason: str) -> None:
        """Set a run's final status and the reason, in words.

        Raises:
            InputValueError: no such run or unknown status.
        """
        value = _status_value(status)
        self._update(run_id, "status = ?, reason = ?", (value, str(reason)))

    def rename_run(self, run_id: str, name: str) -> None:
        """Change a run's display name.

        Raises:
            InputValueError: no such run, or an empty name.
        """
        if not isinstance(name, str) or not name.strip():
            raise InputValueError(f"a run name must be a non-empty string; got {name!r}.")
        self._update(run_id, "name = ?", (name.strip(),))

    def _update(self, run_id: str, assignments: str, args: tuple[Any, ...]) -> None:
        def write() -> None:
            with self._transaction(write=True) as conn:
                cursor = conn.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?", (*args, run_id)
                )
                if cursor.rowcount == 0:
                    raise self._missing(run_id)

        self._retrying(write)

    def delete_run(self, run_id: str) -> None:
        """Delete a run and all its points.

        Raises:
            InputValueError: no such run.
        """

        def write() -> None:
            with self._transaction(write=True) as conn:
                cursor = conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
                if cursor.rowcount == 0:
                    raise self._missing(run_id)

        self._retrying(write)

    def import_run(
        self,
        *,
        model: str,
        task: str,
        optimizer: str,
        settings: Mapping[str, Any],
        seed: int,
        latent_dim: int,
        points: pd.DataFrame,
        name: str | None = None,
    ) -> StoredRun:
        """Store a finished run from elsewhere (status ``imported``) with all its points.

        Args:
            model, task, optimizer, settings, seed, latent_dim, name: as for :meth:`create_run`.
            points: its points: columns ``step``, ``index``, ``z_0..z_{d-1}``, ``objective``,
                ``valid``, and optionally ``scales``, ``likelihood``, ``decoded``,
                ``wall_time`` (NaN / None when absent). Other columns are ignored.

        Returns:
            The stored run.

        Raises:
            InputValueError: bad metadata or points; nothing is stored then.
        """
        new = NewRun(
            model=model,
            task=task,
            optimizer=optimizer,
            seed=seed,
            latent_dim=latent_dim,
            name=name,
            settings=settings,
        )
        return self.import_runs_atomic([(new, points)])[0]

    def import_runs_atomic(self, items: Sequence[tuple[NewRun, pd.DataFrame]]) -> list[StoredRun]:
        """Store several imported runs in one transaction: all of them or, on any error, none.

        Args:
            items: ``(metadata, points)`` pairs; points as for :meth:`import_run`.

        Returns:
            The stored runs, in the order given.

        Raises:
            InputValueError: bad metadata or points; nothing is stored then.
        """
        prepared: list[tuple[StoredRun, list[tuple[Any, ...]]]] = []
        for new, frame in items:
            info = self._new_run_info(new, status=RunStatus.IMPORTED.value, pid=None, host="")
            prepared.append((info, self._frame_rows(info, frame)))

        def write() -> None:
            with self._transaction(write=True) as conn:
                for info, rows in prepared:
                    conn.execute(_INSERT_RUN, self._run_row(info))
                    self._insert_points(conn, rows)

        self._retrying(write)
        return [info for info, _ in prepared]

    @staticmethod
    def _insert_points(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        conn.executemany(_INSERT_POINT, rows)

    @staticmethod
    def _frame_rows(info: StoredRun, frame: pd.DataFrame) -> list[tuple[Any, ...]]:
        """Check an imported run's points and turn them into ``points`` rows."""
        what = f"imported run {info.name!r}"
        if not isinstance(frame, pd.DataFrame):
            raise InputValueError(f"{what}: points must be a DataFrame; got {type(frame)}.")
        required = ["step", "index", *latent_columns(info.latent_dim), "objective", "valid"]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise InputValueError(f"{what}: points lack columns {missing}.")
        z = z_matrix(frame)
        if z.shape[1] != info.latent_dim:
            raise InputValueError(
                f"{what}: points have latent size {z.shape[1]}; the run has latent_dim "
                f"{info.latent_dim}."
            )
        n = len(frame)

        def integers(name: str) -> np.ndarray:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)
            bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise InputValueError(
                    f"{what}: {name} must be a non-negative integer; row {row + 1} has "
                    f"{frame[name].iloc[row]!r}."
                )
            return values.astype(np.int64)

        def floats(name: str) -> np.ndarray:
            if name not in frame.columns:
                return np.full(n, np.nan)
            return pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)

        steps, index = integers("step"), integers("index")
        keys = pd.DataFrame({"step": steps, "index": index}).duplicated()
        if keys.any():
            row = int(np.flatnonzero(keys.to_numpy())[0])
            raise InputValueError(
                f"{what}: step {steps[row]} index {index[row]} appears twice (row {row + 1})."
            )
        objective, scales, likelihood = floats("objective"), floats("scales"), floats("likelihood")
        wall_time = floats("wall_time")
        if frame["valid"].isna().any():
            row = int(np.flatnonzero(frame["valid"].isna().to_numpy())[0])
            raise InputValueError(f"{what}: valid is missing at row {row + 1}.")
        valid = frame["valid"].to_numpy()
        decoded = frame["decoded"].tolist() if "decoded" in frame.columns else [None] * n
        zz = np.ascontiguousarray(z, dtype="<f8")
        return [
            (
                info.id,
                int(steps[i]),
                int(index[i]),
                zz[i].tobytes(),
                _float_or_none(float(objective[i])),
                _float_or_none(float(scales[i])),
                _float_or_none(float(likelihood[i])),
                int(bool(valid[i])),
                _decoded_text(decoded[i]),
                _float_or_none(float(wall_time[i])),
            )
            for i in range(n)
        ]
