"""Run files written by the field's own LSO code, read into scales-viz's run schema.

Four formats, each read the way its tool writes it (never unpickled):

``poli``
    poli-baselines' solver history saved as JSON: ``{"x": [...], "y": [...], "metadata":
    ...}``. ``x[i]`` is the step-`i` proposal: one token list, or a batch of token lists
    (``history["x"][i].tolist()`` of a ``b x L`` array); tokens are joined into the string,
    poli's empty padding tokens dropped. ``y[i]`` holds the matching values (a number, a
    list, or a ``b x 1`` nested list).
``weighted-retraining``
    The ``results.npz`` of Tripp et al.'s weighted-retraining scripts: ``opt_points`` (the
    proposed strings), ``opt_point_properties`` (their objective), optionally
    ``opt_model_version`` (the retraining round: the step) and ``opt_latent_points`` (the
    optimiser's own latents, used when their width is the model's `d`). Other members
    (``params``, ``sample_*``) are not read; members holding Python objects are refused.
``molscore``
    MolScore's ``scores.csv``: ``step``, ``smiles``, ``valid`` and one column per score; the
    objective column is ``--objective-column`` or, by default, the first of ``score``,
    ``total_score``, ``amean``, ``gmean`` that is present.
``tracker``
    A table exported from an experiment tracker (W&B, MLflow, a LOL-BO top-k table): a step
    column (``step``, ``iteration``, ``round``, ``_step``), a string column (``smiles``,
    ``string``, ``decoded``, ``text``, ``expression``, ``selfies``, ``top_k_strings``) and an
    objective column (``objective``, ``score``, ``value``, ``y``, ``top_k_scores``), CSV or
    JSON records; ``--text-column`` and ``--objective-column`` name others.

The result is a frame with ``run``, ``optimizer``, ``seed``, ``step``, ``index``, ``object``,
``objective`` and, where the file has them, ``valid`` and latents ``z_0 .. z_{d-1}``. Rows
without latents are placed in latent space by the loaded model's encoder
(:func:`scales_viz.lso.io.import_field_runs`), and the stored runs say so.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scales_viz.errors import InputValueError

__all__ = ["FIELD_FORMATS", "detect_field_format", "read_field_runs"]

FIELD_FORMATS: dict[str, str] = {
    "poli": "poli-baselines history JSON",
    "weighted-retraining": "weighted-retraining results.npz",
    "molscore": "MolScore scores.csv",
    "tracker": "experiment-tracker table (CSV or JSON)",
}
_STEP_COLUMNS = ("step", "iteration", "round", "_step", "batch")
_TEXT_COLUMNS = (
    "smiles",
    "SMILES",
    "string",
    "decoded",
    "text",
    "expression",
    "selfies",
    "top_k_strings",
    "x",
)
_OBJECTIVE_COLUMNS = ("objective", "score", "value", "y", "top_k_scores", "reward")
_MOLSCORE_OBJECTIVES = ("score", "total_score", "amean", "gmean", "prod", "wsum")
#: Most bytes the members of a results.npz may unpack to.
_MAX_UNPACKED = 200 * 2**20


def _frame(
    objects: list[str],
    objective: np.ndarray,
    steps: np.ndarray,
    *,
    run: str,
    optimizer: str,
    valid: np.ndarray | None = None,
    latents: np.ndarray | None = None,
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "run": run,
            "optimizer": optimizer,
            "seed": 0,
            "step": steps.astype(np.int64),
            "object": objects,
            "objective": objective.astype(np.float64),
        }
    )
    frame["index"] = frame.groupby("step", sort=False).cumcount().astype(np.int64)
    if valid is not None:
        frame["valid"] = pd.array(valid, dtype="boolean")
    if latents is not None:
        for k in range(latents.shape[1]):
            frame[f"z_{k}"] = latents[:, k].astype(np.float64)
    return frame


def _number(value: object, where: str) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, list) and len(value) == 1:
        return _number(value[0], where)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputValueError(f"{where}: expected a number; got {str(value)[:60]!r}.")
    try:
        number = float(value)
    except ValueError:
        raise InputValueError(f"{where}: expected a number; got {value!r}.") from None
    if np.isinf(number):
        raise InputValueError(f"{where}: {value!r} is infinite; use null for an invalid point.")
    return number


def _joined(tokens: object, where: str) -> str:
    if isinstance(tokens, str):
        return tokens
    if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
        return "".join(tokens)  # poli pads with empty tokens
    raise InputValueError(f"{where}: expected a list of string tokens; got {str(tokens)[:60]}.")


def _read_poli(data: bytes, filename: str) -> pd.DataFrame:
    try:
        record = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputValueError(f"could not read {filename} as poli history JSON: {exc}") from exc
    if not isinstance(record, dict) or not {"x", "y"} <= set(record):
        keys = sorted(record)[:8] if isinstance(record, dict) else "-"
        raise InputValueError(
            f'{filename}: a poli-baselines history is a JSON object with "x" and "y" lists; '
            f"got a JSON {type(record).__name__} with keys {keys}."
        )
    xs, ys = record["x"], record["y"]
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise InputValueError(
            f'{filename}: "x" and "y" must be lists of the same length (one entry per step); '
            f"got {len(xs) if isinstance(xs, list) else type(xs).__name__} and "
            f"{len(ys) if isinstance(ys, list) else type(ys).__name__}."
        )
    objects: list[str] = []
    values: list[float] = []
    steps: list[int] = []
    for step, (x, y) in enumerate(zip(xs, ys, strict=True)):
        where = f"{filename}: step {step}"
        batch = x if isinstance(x, list) and x and isinstance(x[0], list) else [x]
        scores = y if isinstance(y, list) and len(batch) > 1 else [y]
        if len(scores) != len(batch):
            raise InputValueError(f"{where}: {len(batch)} proposals but {len(scores)} values in y.")
        for i, (tokens, score) in enumerate(zip(batch, scores, strict=True)):
            objects.append(_joined(tokens, f"{where}, proposal {i}"))
            values.append(_number(score, f"{where}, value {i}"))
            steps.append(step)
    metadata = record.get("metadata")
    solver = metadata.get("solver") if isinstance(metadata, dict) else None
    return _frame(
        objects,
        np.array(values),
        np.array(steps),
        run=Path(filename).stem,
        optimizer=str(solver) if solver else "poli",
    )


def _npz_member(archive: Any, key: str, filename: str) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except ValueError as exc:  # an object array: would need unpickling
        raise InputValueError(
            f"{filename}: member {key!r} holds Python objects (pickled data), which are never "
            "loaded; save it as a plain array (strings as a unicode array)."
        ) from exc


def _read_weighted_retraining(data: bytes, filename: str, latent_dim: int) -> pd.DataFrame:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as packed:
            unpacked = sum(i.file_size for i in packed.infolist())
    except zipfile.BadZipFile as exc:
        raise InputValueError(f"could not read {filename} as an npz archive: {exc}") from exc
    if unpacked > _MAX_UNPACKED:
        raise InputValueError(
            f"{filename} unpacks to {unpacked / 2**20:.0f} MiB; at most "
            f"{_MAX_UNPACKED / 2**20:.0f} MiB are read."
        )
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        missing = [k for k in ("opt_points", "opt_point_properties") if k not in archive.files]
        if missing:
            raise InputValueError(
                f"{filename}: a weighted-retraining results.npz has opt_points and "
                f"opt_point_properties; missing {missing}; members: {sorted(archive.files)}."
            )
        points = _npz_member(archive, "opt_points", filename).reshape(-1)
        values = _npz_member(archive, "opt_point_properties", filename).astype(np.float64)
        values = values.reshape(-1)
        n = points.shape[0]
        if values.shape[0] != n:
            raise InputValueError(
                f"{filename}: {n} opt_points but {values.shape[0]} opt_point_properties."
            )
        steps = np.arange(n)
        if "opt_model_version" in archive.files:
            versions = _npz_member(archive, "opt_model_version", filename).reshape(-1)
            if versions.shape[0] == n:
                steps = versions.astype(np.int64)
        latents = None
        if "opt_latent_points" in archive.files:
            stored = _npz_member(archive, "opt_latent_points", filename).astype(np.float64)
            stored = stored.reshape(n, -1) if stored.size and stored.shape[0] == n else stored
            if stored.ndim == 2 and stored.shape == (n, latent_dim):
                latents = stored
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise InputValueError(f"{filename}: opt_point_properties[{row}] is infinite.")
    return _frame(
        [str(p) for p in points],
        values,
        steps,
        run=Path(filename).stem,
        optimizer="weighted-retraining",
        latents=latents,
    )


def _table(data: bytes, filename: str) -> pd.DataFrame:
    if filename.lower().endswith(".json"):
        try:
            rows = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise InputValueError(f"could not read {filename} as JSON: {exc}") from exc
        if isinstance(rows, dict) and "columns" in rows and "data" in rows:  # W&B table
            return pd.DataFrame(rows["data"], columns=rows["columns"])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputValueError(
                f"{filename}: expected JSON records ([{{...}}, ...]) or a W&B table "
                '({"columns": [...], "data": [...]}).'
            )
        return pd.DataFrame.from_records(rows)
    try:
        return pd.read_csv(io.StringIO(data.decode("utf-8-sig")))
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise InputValueError(f"could not read {filename} as CSV: {exc}") from exc


def _pick(
    frame: pd.DataFrame, given: str | None, options: tuple[str, ...], what: str, filename: str
) -> str:
    if given is not None:
        if given not in frame.columns:
            raise InputValueError(
                f"{filename} has no column {given!r} ({what}); its columns: "
                f"{', '.join(map(str, frame.columns))}."
            )
        return given
    for name in options:
        if name in frame.columns:
            return name
    raise InputValueError(
        f"{filename}: no {what} column (looked for {', '.join(options)}; name one with "
        f"--{what.split()[0]}-column); its columns: {', '.join(map(str, frame.columns))}."
    )


def _read_table(
    data: bytes,
    filename: str,
    *,
    fmt: str,
    text_column: str | None,
    objective_column: str | None,
) -> pd.DataFrame:
    frame = _table(data, filename)
    if frame.empty:
        raise InputValueError(f"{filename} has no data rows.")
    objective_options = _MOLSCORE_OBJECTIVES if fmt == "molscore" else _OBJECTIVE_COLUMNS
    text = _pick(frame, text_column, _TEXT_COLUMNS, "text", filename)
    target = _pick(frame, objective_column, objective_options, "objective", filename)
    step_name = next((c for c in _STEP_COLUMNS if c in frame.columns), None)
    steps = (
        pd.to_numeric(frame[step_name], errors="coerce").to_numpy()
        if step_name
        else np.arange(len(frame), dtype=np.float64)
    )
    if np.isnan(steps).any() or (steps < 0).any() or (steps != np.round(steps)).any():
        row = int(np.flatnonzero(np.isnan(steps) | (steps < 0) | (steps != np.round(steps)))[0])
        raise InputValueError(
            f"{filename}: row {row + 1}, column {step_name!r}: the step must be a whole number "
            f">= 0; got {frame[step_name].iloc[row]!r}."
        )
    values = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=np.float64)
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise InputValueError(f"{filename}: row {row + 1}, column {target!r} is infinite.")
    objects = ["" if pd.isna(v) else str(v) for v in frame[text]]
    valid = None
    if "valid" in frame.columns:
        lowered = frame["valid"].astype(str).str.strip().str.lower()
        valid = lowered.isin({"true", "1", "1.0", "yes", "valid"}).to_numpy()
    run = Path(filename).stem
    if fmt == "molscore" and "model" in frame.columns and frame["model"].nunique() == 1:
        optimizer = str(frame["model"].iloc[0])
    else:
        optimizer = "molscore" if fmt == "molscore" else "tracker"
    return _frame(
        objects,
        values,
        steps.astype(np.int64),
        run=run,
        optimizer=optimizer,
        valid=valid,
    )


def detect_field_format(filename: str, data: bytes) -> str | None:
    """The field format a file looks like (by name and first bytes), or None."""
    name = Path(filename).name.lower()
    if name.endswith(".npz"):
        return "weighted-retraining" if b"opt_points" in data[: 1 << 16] else None
    head = data[:4096].lstrip()
    if name.endswith(".json") and head.startswith(b"{") and b'"x"' in head:
        return "poli"
    if name.endswith(".csv"):
        first = head.split(b"\n", 1)[0].lower()
        if b"smiles" in first and b"step" in first and b"valid" in first:
            return "molscore"
        return "tracker"
    return None


def read_field_runs(
    data: bytes,
    fmt: str,
    *,
    filename: str,
    latent_dim: int,
    text_column: str | None = None,
    objective_column: str | None = None,
) -> pd.DataFrame:
    """Read a field-format run file (see the module docstring).

    Raises:
        InputValueError: an unknown format, or a file that does not read as that format (the
            message names what was expected and what came).
    """
    if fmt not in FIELD_FORMATS:
        raise InputValueError(
            f"unknown run-file format {fmt!r}; the field formats are {sorted(FIELD_FORMATS)}."
        )
    if fmt == "poli":
        frame = _read_poli(data, filename)
    elif fmt == "weighted-retraining":
        frame = _read_weighted_retraining(data, filename, latent_dim)
    else:
        frame = _read_table(
            data, filename, fmt=fmt, text_column=text_column, objective_column=objective_column
        )
    if frame.empty:
        raise InputValueError(f"{filename} has no proposals.")
    return frame
