"""Fuzzing the latent-file readers: safetensors latents, projection maps, paper checkpoints.

- ``load_tensors`` (model weights and reference latents, safetensors) and a user manifest's
  ``reference.file`` (an ``n x d`` tensor ``latents``);
- ``load_map`` (a projection map, ``.npz`` of plain arrays);
- the ScaLES paper checkpoint reader (``torch.load(weights_only=True)`` of a ``.pth``).

Each gets random bytes and mutations of a valid file. The contract: the data, or one
:class:`ScalesVizError` naming the file; never another exception, never unpickled code.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fuzzing import FUZZ, bytes_like
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save

from scales_viz.errors import ScalesVizError
from scales_viz.models.manifest import load_tensors, sha256_of
from scales_viz.models.registry import model_dir
from scales_viz.projection import MAP_FILE, load_map

D = 2


def _valid_safetensors() -> bytes:
    return save({"latents": torch.randn(5, D, generator=torch.Generator().manual_seed(0))})


def _valid_pth() -> bytes:
    buffer = io.BytesIO()
    torch.save({"decoder.weight": torch.zeros(3, 2), "decoder.bias": torch.zeros(3)}, buffer)
    return buffer.getvalue()


@FUZZ
@given(data=st.data())
def test_safetensors_files(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    folder = tmp_path_factory.mktemp("st")
    path = folder / "reference.safetensors"
    path.write_bytes(data.draw(bytes_like(_valid_safetensors())))
    try:
        tensors = load_tensors(folder, path.name, sha256_of(path), "reference")
    except ScalesVizError as exc:
        assert path.name in str(exc)
        return
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scales_viz.models.decoders import MLPDecoder

    folder = tmp_path_factory.mktemp("user")
    torch.manual_seed(0)
    (folder / "decoder.safetensors").write_bytes(save(MLPDecoder(D, 3, 3, hidden=4).state_dict()))
    manifest = {
        "name": "tiny",
        "latent_dim": D,
        "data": {"kind": "sequence", "vocabulary": ["a", "b", " "], "seq_len": 3},
        "decoder": {
            "architecture": "mlp_sequence",
            "file": "decoder.safetensors",
            "params": {"latent_dim": D, "seq_len": 3, "vocab_size": 3, "hidden": 4},
        },
        "reference": {"file": "reference.safetensors"},
    }
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder


@FUZZ
@given(data=st.data())
def test_user_reference_latents(user_dir: Path, data: st.DataObject) -> None:
    from scales_viz.models.user_manifest import load_user_manifest

    (user_dir / "reference.safetensors").write_bytes(data.draw(bytes_like(_valid_safetensors())))
    try:
        model = load_user_manifest(user_dir / "model.json")
    except ScalesVizError as exc:
        assert "reference" in str(exc)
        return
    latents = model.data_latents
    assert latents.ndim == 2 and latents.shape[1] == D


SHIPPED_MAP = (model_dir("digits-2d") / MAP_FILE).read_bytes()


@FUZZ
@given(data=st.data())
def test_projection_maps(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("map") / MAP_FILE
    path.write_bytes(data.draw(bytes_like(SHIPPED_MAP)))
    try:
        loaded = load_map(path)
    except ScalesVizError as exc:
        assert str(path) in str(exc)
        return
    n = len(loaded.latents)
    assert loaded.coords.shape == (n, 2) and len(loaded.decoded) == n


@FUZZ
@given(data=st.data())
def test_paper_checkpoints(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    from scales_viz.models.paper import _state_dict

    path = tmp_path_factory.mktemp("paper") / "expressions_gru_1.pth"
    path.write_bytes(data.draw(bytes_like(_valid_pth())))
    try:
        state: Any = _state_dict(path)
    except ScalesVizError:
        return
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_a_map_whose_header_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    """Like the run-file NPZ: a member header claiming 10^12 rows is refused, not allocated."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)}
    )
    import zipfile

    path = tmp_path / MAP_FILE
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.npy", header.getvalue() + bytes(16))
        archive.writestr("latents.npy", header.getvalue() + bytes(16))
    with pytest.raises(ScalesVizError):
        load_map(path)
