"""Fuzzing model manifests: user manifests (TOML and JSON) and the built-in manifest.json.

Each reader gets random bytes, byte mutations of a valid manifest, and valid manifests with
fields replaced by hostile values (huge or negative sizes, NaN, nested junk, path-like
names). The contract: a working model, or one :class:`ScalesVizError` whose message names
the problem; never another exception, and never an attempt to allocate an absurd module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from fuzzing import FUZZ, bytes_like, edited_record, toml_text
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file

from scales_viz.errors import ScalesVizError
from scales_viz.models.decoders import MLPDecoder
from scales_viz.models.manifest import MANIFEST_FILE, build_module, load_manifest
from scales_viz.models.registry import model_dir
from scales_viz.models.user_manifest import load_user_manifest

VOCAB = ["a", "b", " "]
L = 3
D = 2


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the weights of a tiny sequence decoder and reference latents."""
    folder = tmp_path_factory.mktemp("user-model")
    torch.manual_seed(0)
    decoder = MLPDecoder(D, L, len(VOCAB), hidden=4)
    save_file(decoder.state_dict(), folder / "decoder.safetensors")
    save_file({"latents": torch.randn(5, D)}, folder / "reference.safetensors")
    return folder


VALID_USER: dict[str, Any] = {
    "name": "tiny",
    "latent_dim": D,
    "prior_scale": 1.0,
    "data": {"kind": "sequence", "vocabulary": VOCAB, "seq_len": L, "tokenizer": "characters"},
    "decoder": {
        "architecture": "mlp_sequence",
        "file": "decoder.safetensors",
        "params": {"latent_dim": D, "seq_len": L, "vocab_size": len(VOCAB), "hidden": 4},
    },
    "validity": {"rule": "regex", "pattern": "a+ *", "objectives": ["length"]},
    "reference": {"file": "reference.safetensors"},
}


def _check_user(path: Path) -> None:
    try:
        model = load_user_manifest(path)
    except ScalesVizError as exc:
        assert str(exc).strip()
        return
    z = torch.zeros(2, model.latent_dim)
    assert model.decode_logits(z).shape[0] == 2


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_the_valid_user_manifest_loads(user_dir: Path, suffix: str) -> None:
    path = user_dir / f"valid{suffix}"
    text = toml_text(VALID_USER) if suffix == ".toml" else json.dumps(VALID_USER)
    path.write_text(text)
    assert load_user_manifest(path).name == "tiny"


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@FUZZ
@given(data=st.data())
def test_user_manifest_fields(user_dir: Path, suffix: str, data: st.DataObject) -> None:
    record = data.draw(edited_record(VALID_USER))
    path = user_dir / f"fuzz{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(record))
    else:
        try:
            path.write_text(toml_text(record), encoding="utf-8")
        except TypeError:
            return
    _check_user(path)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@FUZZ
@given(data=st.data())
def test_user_manifest_bytes(user_dir: Path, suffix: str, data: st.DataObject) -> None:
    valid = (toml_text(VALID_USER) if suffix == ".toml" else json.dumps(VALID_USER)).encode()
    path = user_dir / f"bytes{suffix}"
    path.write_bytes(data.draw(bytes_like(valid)))
    _check_user(path)


@pytest.fixture(scope="module")
def builtin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("builtin") / "digits-2d"
    shutil.copytree(model_dir("digits-2d"), folder)
    return folder


def _check_builtin(folder: Path) -> None:
    try:
        record = load_manifest(folder)
        for field in ("decoder", "encoder", "classifier"):
            if field in record:
                build_module(record[field], field)
    except ScalesVizError as exc:
        assert str(exc).strip()


@FUZZ
@given(data=st.data())
def test_builtin_manifest_fields(builtin_dir: Path, data: st.DataObject) -> None:
    valid = json.loads((model_dir("digits-2d") / MANIFEST_FILE).read_text())
    (builtin_dir / MANIFEST_FILE).write_text(json.dumps(data.draw(edited_record(valid))))
    _check_builtin(builtin_dir)


@FUZZ
@given(data=st.data())
def test_builtin_manifest_bytes(builtin_dir: Path, data: st.DataObject) -> None:
    valid = (model_dir("digits-2d") / MANIFEST_FILE).read_bytes()
    (builtin_dir / MANIFEST_FILE).write_bytes(data.draw(bytes_like(valid)))
    _check_builtin(builtin_dir)
