"""User manifests (TOML/JSON): good, broken and hostile files, and a torch.export program."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from reference import reference_scales  # independent float64 autograd reference
from safetensors.torch import save_file

from scales_viz.models import ManifestError, MLPDecoder
from scales_viz.models.decoders import BernoulliMLPDecoder
from scales_viz.models.encoders import MLPEncoder
from scales_viz.models.expressions import EXPRESSION_VOCAB
from scales_viz.models.user import load_user_model, parse_spec
from scales_viz.models.user_manifest import load_user_manifest
from scales_viz.score import scales

D, L = 4, 6
VOCAB = list(EXPRESSION_VOCAB)
V = len(VOCAB)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(t) for t in items) + "]"


def _write(tmp_path: Path, *, extra: str = "", decoder_block: str | None = None) -> Path:
    torch.manual_seed(0)
    decoder = MLPDecoder(D, L, V, hidden=16)
    save_file(decoder.state_dict(), tmp_path / "decoder.safetensors")
    encoder = MLPEncoder(L * V, D, hidden=16)
    save_file(encoder.state_dict(), tmp_path / "encoder.safetensors")
    (tmp_path / "data.txt").write_text("x+1\nsin(x)\nx*x\n")
    block = decoder_block or (
        '[decoder]\narchitecture = "mlp_sequence"\nfile = "decoder.safetensors"\n'
        f"[decoder.params]\nlatent_dim = {D}\nseq_len = {L}\nvocab_size = {V}\nhidden = 16\n"
    )
    text = (
        f'name = "my-vae"\nlatent_dim = {D}\nprior_scale = 1.0\n{extra}\n'
        f'[data]\nkind = "sequence"\nvocabulary = {_toml_list(VOCAB)}\nseq_len = {L}\n'
        'tokenizer = "characters"\n'
        f"{block}"
        '[encoder]\narchitecture = "mlp_encoder"\nfile = "encoder.safetensors"\n'
        f"[encoder.params]\ninputs = {L * V}\nlatent_dim = {D}\nhidden = 16\n"
        '[validity]\nrule = "expressions"\nobjectives = ["fit_target", "length"]\n'
        '[reference]\ndata = "data.txt"\n'
    )
    path = tmp_path / "model.toml"
    path.write_text(text)
    return path


def test_a_toml_manifest_loads_and_scores_exactly(tmp_path: Path) -> None:
    model = load_user_manifest(_write(tmp_path))
    assert model.name == "my-vae" and model.latent_dim == D
    assert set(model.objectives) == {"fit_target", "length"}
    assert model.data_objects == ["x+1", "sin(x)", "x*x"]
    assert model.data_latents.shape == (3, D)
    z = model.sample_prior(5, seed=1).double()
    got = scales(model.decoder_for(z), z)
    expected = reference_scales(model.decoder_for(z), z)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)
    texts = model.decode(z.float())
    assert model.objective_values(texts, "length").shape == (5,)
    # the same model through a registration spec
    assert load_user_model(parse_spec(str(tmp_path / "model.toml"))).name == "my-vae"


def test_the_json_form_is_accepted(tmp_path: Path) -> None:
    import tomllib

    record = tomllib.loads(_write(tmp_path).read_text())
    (tmp_path / "model.json").write_text(json.dumps(record))
    assert load_user_manifest(tmp_path / "model.json").name == "my-vae"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("latent_dim = 4", "latent_dim = 0"), "field 'latent_dim'"),
        (('rule = "expressions"', 'rule = "vibes"'), "field 'validity.rule'"),
        (('"fit_target", "length"', '"fit_target", "beauty"'), "field 'validity.objectives'"),
        (('architecture = "mlp_sequence"', 'architecture = "resnet"'), "decoder.architecture"),
        (('file = "decoder.safetensors"', 'file = "../decoder.safetensors"'), "decoder.file"),
        (("hidden = 16\n[encoder]", "hidden = 32\n[encoder]"), "tensor '"),
        (('kind = "sequence"', 'kind = "audio"'), "field 'data.kind'"),
        (("seq_len = 6\ntokenizer", "seq_len = 7\ntokenizer"), "implies (2, 7, 15)"),
        (('name = "my-vae"', 'name = "../../etc"'), "field 'name'"),
    ],
)
def test_broken_manifests_name_the_field(tmp_path: Path, change, message) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path)
    old, new = change
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_user_manifest(path)


def test_shape_mismatch_names_the_tensor(tmp_path: Path) -> None:
    path = _write(tmp_path)
    state = MLPDecoder(D, L, V, hidden=16).state_dict()
    state["net.0.weight"] = torch.zeros(16, D + 1)
    save_file(state, tmp_path / "decoder.safetensors")
    with pytest.raises(ManifestError, match=r"tensor 'net\.0\.weight' has shape \(16, 5\)"):
        load_user_manifest(path)


def test_hostile_files_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path)
    tripwire = tmp_path / "ran"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (tripwire,))

    (tmp_path / "decoder.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ManifestError):
        load_user_manifest(path)
    assert not tripwire.exists()
    path.write_text("not = [valid toml")
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_user_manifest(path)
    (tmp_path / "huge.toml").write_bytes(b"#" * (2 << 20))
    with pytest.raises(ManifestError, match="larger than"):
        load_user_manifest(tmp_path / "huge.toml")
    bad_sha = _write(tmp_path, extra="")
    text = bad_sha.read_text().replace(
        'file = "decoder.safetensors"\n',
        'file = "decoder.safetensors"\nsha256 = "' + "0" * 64 + '"\n',
        1,
    )
    bad_sha.write_text(text)
    with pytest.raises(ManifestError, match="SHA-256 differs"):
        load_user_manifest(bad_sha)


def test_a_torch_export_program_decoder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    decoder = BernoulliMLPDecoder(2, 16, hidden=8).eval()
    static = torch.export.export(decoder, (torch.zeros(3, 2),))
    torch.export.save(static, str(tmp_path / "decoder.pt2"))
    (tmp_path / "model.toml").write_text(
        'name = "exported"\nlatent_dim = 2\n[data]\nkind = "image"\nshape = [4, 4]\n'
        '[decoder]\nprogram = "decoder.pt2"\n'
    )
    with pytest.raises(ManifestError, match="dynamic batch dimension"):
        load_user_manifest(tmp_path / "model.toml")  # exported for batches of exactly 3
    batch = torch.export.Dim("batch")
    program = torch.export.export(decoder, (torch.zeros(3, 2),), dynamic_shapes={"z": {0: batch}})
    torch.export.save(program, str(tmp_path / "decoder.pt2"))
    model = load_user_manifest(tmp_path / "model.toml")
    z = torch.randn(3, 2, dtype=torch.float64)
    with torch.no_grad():
        expected = decoder.double()(z)
    torch.testing.assert_close(
        model.decode_logits(z.float()).double(), expected, rtol=1e-5, atol=1e-6
    )
    assert torch.isfinite(model.scales(z.float())).all()
    assert model.data_objects[0] == "prior 0"  # no reference data: prior samples, said so
    with pytest.raises(Exception, match="no encoder"):
        model.encode([np.zeros((4, 4))])
