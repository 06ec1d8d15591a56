"""Model directories: manifest validation, checksums, and refusing broken or hostile files."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from scales_viz.models import ManifestError, VAEModel, load_model_dir
from scales_viz.models.manifest import load_manifest, sha256_of
from scales_viz.models.registry import model_dir


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model_dir("digits-2d"), target)
    return target


def _edit(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / "manifest.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_a_copied_model_directory_loads(copy_dir: Path) -> None:
    model = load_model_dir(copy_dir)
    assert isinstance(model, VAEModel)
    assert model.latent_dim == 2


@pytest.mark.parametrize("field", ["latent_dim", "prior_scale", "decoder", "reference", "data"])
def test_missing_field_is_named(copy_dir: Path, field: str) -> None:
    _edit(copy_dir, lambda r: r.pop(field))
    with pytest.raises(ManifestError, match=f"required field '{field}' is missing"):
        load_model_dir(copy_dir)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("latent_dim",), "two", "latent_dim"),
        (("latent_dim",), 10**9, "latent_dim"),
        (("latent_dim",), True, "latent_dim"),
        (("prior_scale",), -1.0, "prior_scale"),
        (("likelihood",), "gaussian", "likelihood"),
        (("task",), "proteins", "task"),
        (("name",), "../../etc", "name"),
        (("format_version",), 99, "format_version"),
        (("data", "shape"), [8, 10**9], "data.shape"),
        (("decoder", "architecture"), "resnet", "decoder.architecture"),
        (("decoder", "params", "hidden"), 10**9, "decoder.params.hidden"),
        (("decoder", "params", "hidden"), {"a": 1}, "decoder.params.hidden"),
        (("decoder", "file"), "../decoder.safetensors", "decoder.file"),
        (("decoder", "file"), "decoder.pt", "decoder.file"),
        (("decoder", "sha256"), "abc", "decoder.sha256"),
    ],
)
def test_wrong_field_is_named_with_what_came(
    copy_dir: Path, path: tuple[str, ...], value: object, field: str
) -> None:
    def change(record: dict[str, Any]) -> None:
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    _edit(copy_dir, change)
    with pytest.raises(ManifestError, match=f"field '{field}'"):
        load_model_dir(copy_dir)


def test_not_json_is_a_clear_error(copy_dir: Path) -> None:
    (copy_dir / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(copy_dir)


def test_missing_manifest_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest is missing"):
        load_model_dir(tmp_path)


def test_missing_weights_file_names_file_and_field(copy_dir: Path) -> None:
    (copy_dir / "encoder.safetensors").unlink()
    with pytest.raises(ManifestError, match=r"encoder\.safetensors.*'encoder\.file' is missing"):
        load_model_dir(copy_dir)


def test_tampered_weights_are_refused(copy_dir: Path) -> None:
    path = copy_dir / "decoder.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"differs from manifest field 'decoder\.sha256'"):
        load_model_dir(copy_dir)


def test_pickle_payload_is_never_unpickled(copy_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (marker.touch, ())  # type: ignore[return-value]

    path = copy_dir / "decoder.safetensors"
    path.write_bytes(pickle.dumps(Payload()))
    # An attacker who controls the files controls the manifest too: make the checksum match.
    _edit(copy_dir, lambda r: r["decoder"].update(sha256=sha256_of(path)))
    with pytest.raises(ManifestError, match="not a readable safetensors file"):
        load_model_dir(copy_dir)
    assert not marker.exists()


def test_tensor_shapes_that_disagree_with_the_manifest_name_the_tensor(copy_dir: Path) -> None:
    _edit(copy_dir, lambda r: r["decoder"]["params"].update(hidden=64))
    with pytest.raises(ManifestError, match=r"tensor 'net\.0\.(weight|bias)' has shape \(128"):
        load_model_dir(copy_dir)


def test_missing_tensors_are_listed(copy_dir: Path) -> None:
    path = copy_dir / "encoder.safetensors"
    save_file({"mu.weight": torch.zeros(2, 128)}, path)
    _edit(copy_dir, lambda r: r["encoder"].update(sha256=sha256_of(path)))
    with pytest.raises(ManifestError, match="tensors do not match architecture 'mlp_encoder'"):
        load_model_dir(copy_dir)


def test_parameters_that_do_not_fit_the_architecture(copy_dir: Path) -> None:
    _edit(copy_dir, lambda r: r["decoder"]["params"].update(layers=3))
    with pytest.raises(ManifestError, match="do not fit architecture 'bernoulli_mlp'"):
        load_model_dir(copy_dir)


def test_reference_latents_of_the_wrong_width(copy_dir: Path) -> None:
    path = copy_dir / "reference.safetensors"
    save_file({"latents": torch.zeros(5, 3), "pixels": torch.zeros(5, 64, dtype=torch.uint8)}, path)
    _edit(copy_dir, lambda r: r["reference"].update(sha256=sha256_of(path)))
    with pytest.raises(ManifestError, match=r"'latents' has shape \(5, 3\).*d=2"):
        load_model_dir(copy_dir)


def test_decoder_output_must_match_the_data_description(copy_dir: Path) -> None:
    _edit(copy_dir, lambda r: r["data"].update(shape=[4, 4]))
    with pytest.raises(ManifestError, match=r"logits of shape \(64,\).*implies \(16,\)"):
        load_model_dir(copy_dir)


def test_huge_manifest_is_refused_before_parsing(copy_dir: Path) -> None:
    (copy_dir / "manifest.json").write_text(" " * (2 << 20))
    with pytest.raises(ManifestError, match="not a manifest"):
        load_manifest(copy_dir)
