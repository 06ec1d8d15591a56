"""Hostile files: code payloads, zip and Parquet bombs, lying headers, absurd sizes.

Each is refused cleanly (one :class:`ScalesVizError` naming the problem) and quickly, without
running code or allocating what the file claims.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from scales_viz.errors import InputValueError, ScalesVizError
from scales_viz.lso.io import MAX_IMPORT_BYTES, read_runs
from scales_viz.models.manifest import ModuleSpec, build_module, load_tensors, sha256_of

TRIPWIRE: list[str] = []


class _Payload:
    """Unpickling this runs `TRIPWIRE.append` (a stand-in for arbitrary code)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (TRIPWIRE.append, ("code ran",))


def _pickle() -> bytes:
    return pickle.dumps({"z": _Payload()})


def test_pickles_are_never_loaded_as_run_files() -> None:
    for fmt in ("npz", "json", "csv", "parquet"):
        with pytest.raises(InputValueError):
            read_runs(_pickle(), fmt=fmt, latent_dim=2, filename=f"evil.{fmt}")
    assert TRIPWIRE == []


def test_pickles_are_never_loaded_as_weights(tmp_path: Path) -> None:
    from scales_viz.models.paper import _state_dict

    path = tmp_path / "expressions_gru_1.pth"
    torch.save({"w": _Payload()}, path)  # a torch checkpoint carrying code
    with pytest.raises(ScalesVizError, match="not a plain PyTorch state dict"):
        _state_dict(path)
    weights = tmp_path / "decoder.safetensors"
    weights.write_bytes(_pickle())
    with pytest.raises(ScalesVizError, match="not a readable safetensors"):
        load_tensors(tmp_path, weights.name, sha256_of(weights), "decoder")
    assert TRIPWIRE == []


def test_a_zip_bomb_npz_is_refused_from_its_headers() -> None:
    """One member that claims (and holds) 1 GiB of zeros, compressed to about 1 MiB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": (2**27, 1)}
        )
        with archive.open("z.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            block = bytes(2**20)
            for _ in range(2**10):
                member.write(block)
    data = buffer.getvalue()
    assert len(data) < 4 * 2**20
    with pytest.raises(InputValueError, match="unpacks to over"):
        read_runs(data, fmt="npz", latent_dim=1, filename="bomb.npz")


def test_an_npz_whose_header_lies_about_its_size_is_refused() -> None:
    """The header claims 10^12 rows; the member holds a few bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)}
        )
        archive.writestr("z.npy", header.getvalue() + bytes(16))
        archive.writestr("objective.npy", header.getvalue() + bytes(16))
    with pytest.raises(InputValueError):
        read_runs(buffer.getvalue(), fmt="npz", latent_dim=2, filename="liar.npz")


def test_a_parquet_dictionary_bomb_is_refused_before_decoding() -> None:
    """A 6 kB file whose text column expands to 2 GB through one dictionary entry."""
    big = "a" * 1_000_000
    table = pa.table({"run": [big] * 2000, "step": list(range(2000)), "objective": [0.0] * 2000})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    assert len(buffer.getvalue()) < 64 * 2**10
    with pytest.raises(InputValueError, match="unpacks to over"):
        read_runs(buffer.getvalue(), fmt="parquet", latent_dim=2, filename="bomb.parquet")


def test_a_parquet_compression_bomb_is_refused_from_its_metadata() -> None:
    """Long lists of zeros: tiny compressed, hundreds of MB unpacked."""
    zeros = pa.array([np.zeros(40_000)] * 1000, type=pa.list_(pa.float64()))
    table = pa.table({"z": zeros, "step": list(range(1000)), "objective": [0.0] * 1000})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    assert len(buffer.getvalue()) < MAX_IMPORT_BYTES
    with pytest.raises(InputValueError, match="unpacks to over"):
        read_runs(buffer.getvalue(), fmt="parquet", latent_dim=2, filename="bomb.parquet")


def test_a_parquet_with_nested_objects_is_refused() -> None:
    table = pa.table({"z": [{"a": 1}], "step": [0], "objective": [0.0]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with pytest.raises(InputValueError, match="column 'z'"):
        read_runs(buffer.getvalue(), fmt="parquet", latent_dim=2, filename="odd.parquet")


def test_a_safetensors_header_claiming_petabytes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "decoder.safetensors"
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 4 * 10**18]}}
    ).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(ScalesVizError):
        load_tensors(tmp_path, path.name, sha256_of(path), "decoder")
    path.write_bytes(struct.pack("<Q", 2**62) + b"{}")  # header length beyond the file
    with pytest.raises(ScalesVizError):
        load_tensors(tmp_path, path.name, sha256_of(path), "decoder")


@pytest.mark.parametrize(
    "params",
    [
        {"latent_dim": 2, "seq_len": 10**9, "vocab_size": 3},
        {"latent_dim": 65536, "seq_len": 65536, "vocab_size": 65536},
        {"latent_dim": 2, "seq_len": 3, "vocab_size": 3, "hidden": 65536},
        {"latent_dim": 2, "seq_len": -1, "vocab_size": 3},
    ],
    ids=["L=1e9", "all-max", "hidden-max", "negative"],
)
def test_absurd_module_sizes_are_refused_before_allocating(params: dict[str, int]) -> None:
    spec = ModuleSpec("mlp_sequence", params, "decoder.safetensors", "0" * 64)
    with pytest.raises(ScalesVizError):
        build_module(spec, "decoder")


def test_a_user_manifest_with_absurd_sizes_is_refused(tmp_path: Path) -> None:
    from scales_viz.models.user_manifest import load_user_manifest

    path = tmp_path / "model.toml"
    (tmp_path / "decoder.safetensors").write_bytes(b"")
    path.write_text(
        'name = "absurd"\nlatent_dim = 1000000000\n'
        '[data]\nkind = "sequence"\nvocabulary = ["a", " "]\nseq_len = 1000000000\n'
        '[decoder]\narchitecture = "mlp_sequence"\nfile = "decoder.safetensors"\n'
        "[decoder.params]\nlatent_dim = 1000000000\nseq_len = 1000000000\nvocab_size = 2\n"
    )
    with pytest.raises(ScalesVizError, match="latent_dim"):
        load_user_manifest(path)
    text = path.read_text().replace("latent_dim = 1000000000\n[data]", "latent_dim = 2\n[data]")
    path.write_text(text)
    with pytest.raises(ScalesVizError, match="seq_len"):
        load_user_manifest(path)


def test_deeply_nested_json_is_refused() -> None:
    data = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(InputValueError, match="could not read"):
        read_runs(data, fmt="json", latent_dim=2, filename="deep.json")
