"""Score a file of latents, any size, in one process or on a Ray cluster.

``scales-viz score MODEL LATENTS --out FILE [--ray ADDRESS|local] [--batch N]`` reads `n x d`
latents from ``.npy`` (memory-mapped), ``.npz`` (array ``z``), Parquet or CSV (columns
``z_0 .. z_{d-1}``), checks the whole file first (readable, width `d`, every value finite:
one clear error before any work starts), then scores it chunk by chunk and streams one
Parquet row per latent, in input order, to FILE: ``scales``, ``likelihood``, ``prior``,
``distance_to_data`` (to the model's reference latents), ``valid``, ``decoded`` (the object
as text; empty for images) and one ``objective:NAME`` column per objective (NaN where the
decoding is invalid). Memory stays bounded by the chunk size, not by `n`.

With Ray (``pip install 'scales-viz[ray]'``), the chunks are scored by an actor pool of Ray
Data (``map_batches``): each actor loads the model once (one GPU per actor where the cluster
has GPUs) and reads its chunks from the file itself, so the file must be readable at the
same path on every node (a local cluster, or shared storage). The driver only writes what
comes back, in order. Ray is imported here only when asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scales_viz.errors import InputValueError

if TYPE_CHECKING:
    import torch

    from scales_viz.models.base import LatentModel

__all__ = ["LatentFile", "inspect_latents", "iter_latents", "score_chunk", "score_file"]

#: Latents per chunk by default (bounds memory: the Jacobians of one chunk at a time).
DEFAULT_BATCH = 2048
#: Rows read at a time while checking a file.
_CHECK_ROWS = 65_536
_LATENT_NAME = "z_{}"


@dataclass(frozen=True)
class LatentFile:
    """A checked latents file: where it is, its kind and shape."""

    path: Path
    kind: str  # "npy", "npz", "parquet" or "csv"
    n: int
    d: int


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    kinds = {".npy": "npy", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
    if suffix not in kinds:
        raise InputValueError(
            f"{path.name}: latents come as .npy (n x d), .npz (array z), .parquet or .csv "
            f"(columns z_0 .. z_(d-1)); got a {suffix or 'suffix-less'} file."
        )
    return kinds[suffix]


def _columns(d: int) -> list[str]:
    return [_LATENT_NAME.format(k) for k in range(d)]


def _raw_chunks(path: Path, kind: str, d: int, rows: int) -> Iterator[np.ndarray]:
    """The file's latents, `rows` at a time, as float64 arrays (unchecked)."""
    if kind == "npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        for start in range(0, array.shape[0], rows):
            yield np.asarray(array[start : start + rows], dtype=np.float64)
    elif kind == "npz":
        with np.load(path, allow_pickle=False) as archive:
            array = archive["z"]
        for start in range(0, array.shape[0], rows):
            yield np.asarray(array[start : start + rows], dtype=np.float64)
    elif kind == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as handle:
            for batch in handle.iter_batches(batch_size=rows, columns=_columns(d)):
                yield batch.to_pandas().to_numpy(dtype=np.float64)
    else:
        for frame in pd.read_csv(path, usecols=_columns(d), chunksize=rows):
            yield frame[_columns(d)].to_numpy(dtype=np.float64)


def _width(path: Path, kind: str) -> int:
    """`d` from the file's header or schema."""
    if kind == "npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if array.ndim != 2:
            raise InputValueError(f"{path.name}: expected an n x d array; got shape {array.shape}.")
        return int(array.shape[1])
    if kind == "npz":
        with np.load(path, allow_pickle=False) as archive:
            if "z" not in archive.files:
                raise InputValueError(
                    f"{path.name}: expected an array named z; it holds {sorted(archive.files)}."
                )
            shape = archive["z"].shape
        if len(shape) != 2:
            raise InputValueError(f"{path.name}: expected z of shape n x d; got {shape}.")
        return int(shape[1])
    if kind == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as handle:
            names = handle.schema_arrow.names
    else:
        names = list(pd.read_csv(path, nrows=0).columns)
    d = 0
    while _LATENT_NAME.format(d) in names:
        d += 1
    if d == 0:
        raise InputValueError(
            f"{path.name}: expected columns z_0 .. z_(d-1); its columns are "
            f"{', '.join(map(str, names[:12]))}."
        )
    return d


def inspect_latents(path: str | Path, latent_dim: int) -> LatentFile:
    """Check a latents file completely before any scoring: readable, `n x latent_dim`,
    every value finite (the first bad row is named).

    Raises:
        InputValueError: unreadable file, unknown suffix, wrong width, or a non-finite value.
    """
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise InputValueError(f"{path}: no such file.")
    try:
        d = _width(path, kind)
        if d != latent_dim:
            raise InputValueError(
                f"{path.name}: the latents have d={d} values each; the model takes d={latent_dim}."
            )
        seen = 0
        for chunk in _raw_chunks(path, kind, d, _CHECK_ROWS):
            bad = ~np.isfinite(chunk).all(axis=1)
            if bad.any():
                row = seen + int(np.flatnonzero(bad)[0])
                raise InputValueError(
                    f"{path.name}: row {row} (from 0) has a missing, NaN or infinite value; "
                    "every latent value must be a finite number. Nothing was scored."
                )
            seen += chunk.shape[0]
    except InputValueError:
        raise
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:
        raise InputValueError(f"could not read {path.name} as {kind} latents: {exc}") from exc
    if seen == 0:
        raise InputValueError(f"{path.name} holds no latents.")
    return LatentFile(path=path, kind=kind, n=seen, d=d)


def iter_latents(info: LatentFile, batch: int) -> Iterator[np.ndarray]:
    """The checked file's latents, `batch` rows at a time, in order."""
    yield from _raw_chunks(info.path, info.kind, info.d, batch)


def read_chunk(info: LatentFile, index: int, batch: int) -> np.ndarray:
    """Chunk `index` (rows ``index*batch`` onwards) of a checked file."""
    if info.kind in ("npy", "npz"):
        if info.kind == "npy":
            array = np.load(info.path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(info.path, allow_pickle=False) as archive:
                array = archive["z"]
        return np.asarray(array[index * batch : (index + 1) * batch], dtype=np.float64)
    if info.kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(info.path, columns=_columns(info.d))
        return table.slice(index * batch, batch).to_pandas().to_numpy(dtype=np.float64)
    frame = pd.read_csv(
        info.path, usecols=_columns(info.d), skiprows=range(1, index * batch + 1), nrows=batch
    )
    return frame[_columns(info.d)].to_numpy(dtype=np.float64)


def score_chunk(
    model: LatentModel, z: np.ndarray, device: torch.device | None = None
) -> pd.DataFrame:
    """Every per-latent number of one chunk (the columns of the module docstring); the
    decoder's scores are computed on `device` (default CPU)."""
    import torch

    from scales_viz.scoring import all_scores, score_latents

    tensor = torch.from_numpy(np.array(z, dtype=np.float64))  # a copy: z may be a read-only map
    scores, decoded = all_scores(model, tensor, device=device)
    frame = pd.DataFrame(
        {
            "scales": scores["scales"],
            "likelihood": scores["likelihood"],
            "prior": score_latents(model, "prior", tensor).numpy(),
            "distance_to_data": score_latents(model, "distance_to_data", tensor).numpy(),
            "valid": scores["valid"].astype(bool),
            "decoded": decoded,
        }
    )
    for name, values in scores.items():
        if name.startswith("objective:"):
            frame[name] = values
    return frame


def _write(frames: Iterator[pd.DataFrame], out: Path, on_rows: Callable[[int], None]) -> int:
    """Stream frames into one Parquet file (written under a temporary name, then renamed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            rows += len(frame)
            on_rows(rows)
    finally:
        if writer is not None:
            writer.close()
    partial.replace(out)
    return rows


def score_file(
    model: LatentModel,
    info: LatentFile,
    out: Path,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Score a checked file in this process, streaming the rows to `out` (Parquet)."""
    if batch < 1:
        raise InputValueError(f"--batch must be at least 1; got {batch}.")
    frames = (score_chunk(model, z) for z in iter_latents(info, batch))
    return _write(frames, out, lambda rows: progress(rows, info.n) if progress else None)


class _ScoreActor:
    """A Ray Data actor: loads the model once, scores the chunks whose indices it is given."""

    def __init__(self, spec: str, info: LatentFile, batch: int) -> None:
        import torch

        from scales_viz.models import load_model

        self.model = load_model(spec, allow_code=True)
        self.info = info
        self.batch = batch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def __call__(self, chunks: dict[str, np.ndarray]) -> pd.DataFrame:
        frames = [
            score_chunk(self.model, read_chunk(self.info, int(i), self.batch), self.device).assign(
                chunk=int(i)
            )
            for i in chunks["id"]
        ]
        return pd.concat(frames, ignore_index=True)


def connect_ray(address: str) -> Any:
    """``ray.init`` for `address` ("local" starts a local cluster on this machine)."""
    from scales_viz.models.molecules import MissingExtraError

    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("--ray needs Ray: pip install 'scales-viz[ray]'.") from exc
    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    return ray


def score_file_ray(
    spec: str,
    info: LatentFile,
    out: Path,
    *,
    address: str = "local",
    batch: int = DEFAULT_BATCH,
    actors: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Score a checked file on a Ray cluster (see the module docstring); the same rows, in
    the same order, as :func:`score_file`."""
    if batch < 1:
        raise InputValueError(f"--batch must be at least 1; got {batch}.")
    started = not _ray_running()
    ray = connect_ray(address)
    import ray.data as ray_data

    context = ray_data.DataContext.get_current()
    context.execution_options.preserve_order = True
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    workers = actors or max(1, gpus or int(resources.get("CPU", 1)) - 1)
    n_chunks = math.ceil(info.n / batch)
    # The chunk indices are made here, not read by a Ray task: a read task needs a CPU, and
    # with every CPU held by an actor it would never be scheduled (a deadlock).
    items = [{"id": i} for i in range(n_chunks)]
    dataset = ray_data.from_items(items, override_num_blocks=n_chunks).map_batches(
        _ScoreActor,
        fn_constructor_kwargs={"spec": spec, "info": info, "batch": batch},
        batch_size=1,
        batch_format="numpy",
        compute=ray_data.ActorPoolStrategy(size=workers),
        num_gpus=1 if gpus else 0,
        num_cpus=1,
    )

    def frames() -> Iterator[pd.DataFrame]:
        for block in dataset.iter_batches(batch_size=None, batch_format="pandas"):
            frame = pd.DataFrame(block)
            yield frame.sort_values("chunk", kind="stable").drop(columns="chunk")

    try:
        return _write(frames(), out, lambda rows: progress(rows, info.n) if progress else None)
    finally:
        if started:  # a cluster this call started (or joined) for itself
            ray.shutdown()


def _ray_running() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return bool(ray.is_initialized())
