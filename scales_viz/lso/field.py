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
    The run's per-round GP data files are read too when given (below).
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

**weighted-retraining's per-round GP data.** As the scripts of
``cambridge-mlg/weighted-retraining`` write them (read from the repository's source):

* ``weighted_retraining/opt_scripts/opt_chem.py`` (``main_loop`` and ``latent_optimization``):
  round ``ret_idx`` (its ``opt_model_version``) first retrains the model, then, with
  ``--lso_strategy opt``, writes ``RESULT_ROOT/gp/iter{N}/data.npz`` with ``N =
  retraining_frequency * ret_idx``, the number of queries made before the round. Its members
  (``np.savez_compressed``): ``X_train`` (float32, ``(a + m) x d``), ``y_train`` (float32,
  ``(a + m) x 1``), ``X_test`` and ``y_test`` (``[]``: float64, shape ``(0,)``) and ``smiles``
  (a unicode array of the ``a`` training strings). The first ``a`` rows of ``X_train`` are
  the encoder means (``_encode_mol_trees``: ``T_mean``, ``G_mean``) of ``smiles`` under the
  model *retrained in that round*: the GP's training set (the ``n_best_points`` best and
  ``n_rand_points`` random strings of the data set, which holds earlier rounds' proposals,
  re-encoded every round). The file is rewritten after every query: each appends the GP's
  optimum ``z_opt`` (``gp_opt_res{i:04d}.npy``, ``1 x d`` float32, raw latent space) as a row
  of ``X_train``, so the last ``m`` rows are the latents the round's ``m`` proposals were
  decoded from, in query order, and ``smiles`` keeps its ``a`` training strings.
  ``y_train = -max(property, invalid_score)`` (``_save_gp_data``: the GP minimises). The same
  folder holds ``gp_train_res{i:04d}.npz`` (GP hyperparameters: ``Z``,
  ``kernel_lengthscales``, ...) and logs; those are not read.
* ``weighted_retraining/opt_scripts/opt_expr.py`` (``latent_optimization``, with
  ``expr/expr_data.py``'s ``subsample_dataset``, ``append_trainset`` and ``save_data``)
  writes ``RESULT_ROOT/opt{ite}/data.npz`` (``ite = opt_model_version + 1``) with
  ``X_train`` and ``y_train`` *standardised* (``(X - X_mean) / X_std`` with one scalar mean
  and std of the round's initial GP set), ``X_test``, ``y_test`` (``np.float32(None)``
  without a test set) and no strings. ``X_mean`` and ``X_std`` are saved nowhere, so these
  rows are not coordinates in any model's latent space, and scales-viz does not use them:
  that round's points are placed by the encoder, and the import says why.

How scales-viz uses them (:func:`match_weighted_retraining_gp` here, the model check in
:func:`scales_viz.lso.io.import_field_runs`): round ``r``'s proposals are the rows of
``results.npz`` with ``opt_model_version == r`` (in query order; opt_chem.py appends them after
the round), and its file is ``gp/iter{N}/data.npz`` with ``N`` the number of rows of earlier
rounds. The file matches when it holds exactly as many appended rows as the round has proposals
and their ``-y_train`` equal the round's ``opt_point_properties`` up to float32 (values above
the property count as clipped when they share one floor: ``invalid_score`` is not saved in the
file); then its last ``m`` rows are the optimiser's own latents of those points. Those latents
live in the latent space of the model retrained in round ``r``, so they are the loaded model's
coordinates only when the loaded model is that round's model: their width must be the model's
`d`, and the model's encoder must give the file's training strings the latents stored for them
(checked on up to :data:`scales_viz.lso.io.GP_ANCHOR_ROWS` strings). Rounds that pass keep
their own latents; the others (any other model: the pretrained one, another round's, a
scales-viz model of the same width) are placed by the encoder like files without latents, each
with its reason. An agreeing encoder is strong evidence, not proof, that the decoder is the
round's too. So in the views, a round with its own latents shows where the GP actually proposed
in that model's space (ScaLES, likelihood and decodes computed there); an encoded round shows
where the loaded model puts the proposed strings, which says nothing about where the optimiser
searched. With retraining on, at most the round(s) of one checkpoint can be own; with
``--n_retrain_epochs 0`` (and no initial retraining) every round uses the pretrained model. The
GP training sets themselves are not imported as runs. A file that does not read as GP data (not
an npz, pickled members, wrong shapes or dtypes) is refused with an error.

The result is a frame with ``run``, ``optimizer``, ``seed``, ``step``, ``index``, ``object``,
``objective`` and, where the file has them, ``valid`` and latents ``z_0 .. z_{d-1}``. Rows
without latents are placed in latent space by the loaded model's encoder
(:func:`scales_viz.lso.io.import_field_runs`), and the stored runs say so.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scales_viz.errors import InputValueError
from scales_viz.npz import npz_headers

__all__ = [
    "FIELD_FORMATS",
    "GPRound",
    "detect_field_format",
    "is_weighted_retraining_gp_file",
    "match_weighted_retraining_gp",
    "read_field_runs",
]

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
#: opt_chem.py's GP data of the round that began after N queries.
_CHEM_GP_FILE = re.compile(r"(?:^|.*/)gp/iter(0|[1-9][0-9]*)/data\.npz")
#: opt_expr.py's GP data of round ite - 1 (standardised latents).
_EXPR_GP_FILE = re.compile(r"(?:^|.*/)opt([1-9][0-9]*)/data\.npz")
#: Tolerances of the match of ``-y_train`` (float32) to ``opt_point_properties``.
_Y_RTOL = 1e-5
_Y_ATOL = 1e-4


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


@dataclass(frozen=True)
class GPRound:
    """weighted-retraining's GP data of one retraining round, matched to its proposals.

    Attributes:
        round: the round (``opt_model_version``).
        source: the data file's name, as given.
        rows: positions (in the frame of :func:`read_field_runs`) of the round's `m`
            proposals, in query order.
        latents: `m x w` float64: the rows of ``X_train`` the GP proposed them at, or None
            when the file cannot give them (`note` says why).
        anchor_strings: the `a` training strings of the round's GP (``smiles``).
        anchor_latents: `a x w` float64: ``X_train[:a]``, their encoder means under the
            model retrained in that round.
        note: why `latents` is None, or "".
    """

    round: int
    source: str
    rows: np.ndarray
    latents: np.ndarray | None
    anchor_strings: tuple[str, ...] = ()
    anchor_latents: np.ndarray | None = None
    note: str = ""


def is_weighted_retraining_gp_file(name: str) -> bool:
    """Whether `name` (a path relative to a run's folder) is laid out as a weighted-retraining
    GP data file: ``gp/iter{N}/data.npz`` (opt_chem.py) or ``opt{i}/data.npz`` (opt_expr.py)."""
    posix = name.replace("\\", "/")
    return bool(_CHEM_GP_FILE.fullmatch(posix) or _EXPR_GP_FILE.fullmatch(posix))


def _gp_headers(data: bytes, name: str) -> tuple[Any, dict[str, tuple[tuple[int, ...], Any]]]:
    """The open archive and its member headers, refusing what is not GP data."""
    if not data.startswith(b"PK"):
        kind = "a single .npy array" if data.startswith(b"\x93NUMPY") else "not a zip archive"
        raise InputValueError(
            f"{name}: expected weighted-retraining's GP data, an .npz archive (X_train, "
            f"y_train, ...) written by np.savez_compressed; got {kind}."
        )
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        headers = npz_headers(archive, name, _MAX_UNPACKED)
    except InputValueError:
        raise
    except Exception as exc:  # zipfile and numpy raise many types on damaged archives
        raise InputValueError(
            f"could not read {name} as weighted-retraining GP data: {exc}"
        ) from exc
    return archive, headers


def _gp_arrays(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``X_train`` (`n x w`), ``y_train`` (`n`) and ``smiles`` (`a`, or None) of a GP file.

    Raises:
        InputValueError: not an npz, pickled members, missing members, wrong shapes or dtypes.
    """
    archive, headers = _gp_headers(data, name)
    with archive:
        missing = [k for k in ("X_train", "y_train") if k not in headers]
        if missing:
            raise InputValueError(
                f"{name}: weighted-retraining's GP data has X_train (n x d) and y_train "
                f"(n x 1); missing {missing}; members: {sorted(headers)}."
            )
        (x_shape, x_dtype), (y_shape, y_dtype) = headers["X_train"], headers["y_train"]
        if len(x_shape) != 2 or x_shape[1] < 1 or x_dtype.kind != "f":
            raise InputValueError(
                f"{name}: X_train must be an n x d float array (latents); got shape "
                f"{x_shape}, dtype {x_dtype}."
            )
        n = x_shape[0]
        if y_shape not in ((n,), (n, 1)) or y_dtype.kind != "f":
            raise InputValueError(
                f"{name}: y_train must be a float array of shape ({n}, 1), one value per row "
                f"of X_train; got shape {y_shape}, dtype {y_dtype}."
            )
        smiles = None
        if "smiles" in headers:
            s_shape, s_dtype = headers["smiles"]
            if len(s_shape) != 1 or s_dtype.kind != "U" or s_shape[0] > n:
                raise InputValueError(
                    f"{name}: smiles must be a unicode array of at most {n} training strings "
                    f"(one per leading row of X_train); got shape {s_shape}, dtype {s_dtype}."
                )
            smiles = np.asarray(archive["smiles"])
        try:
            x = np.asarray(archive["X_train"], dtype=np.float64)
            y = np.asarray(archive["y_train"], dtype=np.float64).reshape(-1)
        except Exception as exc:  # a damaged member
            raise InputValueError(f"could not read {name}'s arrays: {exc}") from exc
    return x, y, smiles


def _objective_note(tail: np.ndarray, values: np.ndarray) -> str:
    """Why ``-y_train`` of the appended rows is not the round's objective ("" when it is).

    opt_chem.py stores ``-max(property, invalid_score)``: each value equals the property (up
    to float32) or is clipped up to one floor that no unclipped value lies below."""
    same = np.isclose(tail, values, rtol=_Y_RTOL, atol=_Y_ATOL, equal_nan=True)
    clipped = ~same & (tail > values)
    floor = tail[clipped]
    one_floor = floor.size == 0 or (
        np.ptp(floor) <= _Y_ATOL and not (tail[same] < floor.min() - _Y_ATOL).any()
    )
    if (same | clipped).all() and one_floor:
        return ""
    i = int(np.flatnonzero(~same)[0])
    return (
        f"its -y_train of the appended rows differ from results.npz's opt_point_properties "
        f"(proposal {i}: {tail[i]:.6g} vs {values[i]:.6g}), so it is another run's or round's"
    )


def _chem_round(
    r: int, name: str, data: bytes, rows: np.ndarray, values: np.ndarray, latent_dim: int
) -> GPRound:
    x, y, smiles = _gp_arrays(data, name)
    m = rows.shape[0]
    if smiles is None:
        note = (
            "it has no smiles member, so its training rows and its proposals cannot be told "
            "apart (opt_chem.py writes one)"
        )
        return GPRound(r, name, rows, None, note=note)
    a = smiles.shape[0]
    anchors = tuple(str(t) for t in smiles)
    if x.shape[0] - a != m:
        note = (
            f"it holds {x.shape[0] - a} proposals after its {a} training strings; "
            f"results.npz has {m} for round {r}"
        )
        return GPRound(r, name, rows, None, anchors, x[:a], note)
    note = _objective_note(-y[a:], values[rows])
    if not note and x.shape[1] != latent_dim:
        note = f"its latents are {x.shape[1]}-wide; the model has d={latent_dim}"
    if not np.isfinite(x).all():
        note = note or "its X_train holds NaN or infinite latents"
    return GPRound(r, name, rows, None if note else x[a:], anchors, x[:a], note)


def _round_blocks(steps: np.ndarray) -> list[tuple[int, np.ndarray, int]]:
    """``(round, rows, queries before it)`` per round; rounds must come in contiguous blocks."""
    rounds = list(dict.fromkeys(steps.tolist()))
    blocks = []
    for r in rounds:
        rows = np.flatnonzero(steps == r)
        blocks.append((int(r), rows, int(rows[0])))
    return blocks


def match_weighted_retraining_gp(
    frame: pd.DataFrame, files: Mapping[str, bytes], *, latent_dim: int
) -> tuple[list[GPRound], list[str]]:
    """Match weighted-retraining GP data files to the rounds of a read ``results.npz``.

    Args:
        frame: :func:`read_field_runs`'s frame of the ``results.npz`` (``step`` is the round).
        files: the GP data files' bytes by their paths relative to the run's folder
            (``gp/iter{N}/data.npz``, ``opt{i}/data.npz``).
        latent_dim: the loaded model's `d`.

    Returns:
        One :class:`GPRound` per round that has a file, and notes on the files that match no
        round. The model check (is the loaded model the round's?) is the caller's.

    Raises:
        InputValueError: a file named outside the layout, or one that does not read as GP data.
    """
    chem: dict[int, str] = {}
    expr: dict[int, str] = {}
    for name in files:
        posix = name.replace("\\", "/")
        if found := _CHEM_GP_FILE.fullmatch(posix):
            chem[int(found.group(1))] = name
        elif found := _EXPR_GP_FILE.fullmatch(posix):
            expr[int(found.group(1))] = name
        else:
            raise InputValueError(
                f"{name}: not a weighted-retraining GP data file; expected gp/iter{{N}}/data.npz "
                "(opt_chem.py) or opt{i}/data.npz (opt_expr.py) relative to the run's folder."
            )
    steps = frame["step"].to_numpy()
    values = frame["objective"].to_numpy(dtype=np.float64)
    rounds: list[GPRound] = []
    used: set[str] = set()
    blocks = _round_blocks(steps)
    for r, rows, before in blocks:
        if rows[-1] - rows[0] + 1 != rows.shape[0]:
            continue  # not one block: not as opt_chem.py appends them
        if before in chem:
            name = chem[before]
            rounds.append(_chem_round(r, name, files[name], rows, values, latent_dim))
            used.add(name)
        elif r + 1 in expr:
            name = expr[r + 1]
            _gp_headers(files[name], name)[0].close()  # refuse a hostile file all the same
            note = (
                "opt_expr.py saves standardised latents ((z - X_mean) / X_std) and not X_mean or "
                "X_std, so they are no model's coordinates"
            )
            rounds.append(GPRound(r, name, rows, None, note=note))
            used.add(name)
    starts = ", ".join(str(before) for _, _, before in blocks[:8])
    notes = [
        f"{name}: matches no round of the results (rounds begin after {starts} queries); not read"
        for name in files
        if name not in used
    ]
    return rounds, notes


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
