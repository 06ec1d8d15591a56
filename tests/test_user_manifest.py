"""User manifests (TOML/JSON): good, broken and hostile files, and a torch.export program."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from reference import reference_gradient, reference_scales  # independent float64 autograd
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from scales_viz.models import ManifestError, MLPDecoder
from scales_viz.models.decoders import BernoulliConvDecoder, BernoulliMLPDecoder
from scales_viz.models.encoders import ConvImageEncoder, MLPEncoder
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


# A conv image model: 6 x 5 images (not a power of two, so the decoder crops its 8 x 8 grid).
H, W = 6, 5
CONV_CHANNELS = [8, 4, 4]


def _write_image(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    save_file(
        BernoulliConvDecoder(D, H, W, channels=CONV_CHANNELS).state_dict(),
        tmp_path / "decoder.safetensors",
    )
    save_file(
        ConvImageEncoder(H, W, D, channels=[4, 8], hidden=16).state_dict(),
        tmp_path / "encoder.safetensors",
    )
    path = tmp_path / "model.toml"
    path.write_text(
        f'name = "my-conv-vae"\nlatent_dim = {D}\nprior_scale = 1.0\n'
        f'[data]\nkind = "image"\nshape = [{H}, {W}]\n'
        '[decoder]\narchitecture = "bernoulli_conv"\nfile = "decoder.safetensors"\n'
        f"[decoder.params]\nlatent_dim = {D}\nheight = {H}\nwidth = {W}\n"
        f"channels = {CONV_CHANNELS}\n"
        '[encoder]\narchitecture = "conv_image_encoder"\nfile = "encoder.safetensors"\n'
        f"[encoder.params]\nheight = {H}\nwidth = {W}\nlatent_dim = {D}\nchannels = [4, 8]\n"
        "hidden = 16\n"
    )
    return path


def _plain_conv_decoder(state: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """The conv decoder written out with torch.nn.functional: `n x H x W` logits."""
    h = F.silu(F.linear(z, state["project.weight"], state["project.bias"]))
    h = h.view(len(z), CONV_CHANNELS[0], 2, 2)  # ceil(6 / 4) x ceil(5 / 4)
    for i in range(len(CONV_CHANNELS) - 1):
        up = F.conv_transpose2d(h, state[f"up.{i}.weight"], state[f"up.{i}.bias"], 2, 1)
        h = F.silu(up)
    return F.conv2d(h, state["head.weight"], state["head.bias"], padding=1)[:, 0, :H, :W]


def test_a_conv_image_manifest_loads_decodes_and_scores_exactly(tmp_path: Path) -> None:
    model = load_user_manifest(_write_image(tmp_path))
    assert model.likelihood == "bernoulli" and model.latent_dim == D
    z = model.sample_prior(5, seed=1).double()
    # the BernoulliMLPDecoder contract: n x P logits, pixel (i, j) at i * W + j
    logits = model.decode_logits(z)
    assert logits.shape == (5, H * W)
    state = {k: v.double() for k, v in load_file(tmp_path / "decoder.safetensors").items()}
    plain = _plain_conv_decoder(state, z)
    torch.testing.assert_close(logits, plain.reshape(5, H * W))
    images = model.decode(z)
    assert images[0].shape == (H, W)
    np.testing.assert_allclose(images[3], torch.sigmoid(plain[3]).numpy(), rtol=1e-5)
    # ScaLES and its gradient against the independent float64 references
    got = model.scales(z)
    expected = reference_scales(model.decoder_for(z), z, "bernoulli")
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)
    point = z[:1].clone().requires_grad_(True)  # second order through the transposed convs
    (grad,) = torch.autograd.grad(model.scales(point).sum(), point)
    want = reference_gradient(model.decoder_for(z), z[:1], "bernoulli")
    torch.testing.assert_close(grad, want, rtol=1e-5, atol=1e-6)
    # the conv encoder takes H x W images
    encoder = ConvImageEncoder(H, W, D, channels=[4, 8], hidden=16)
    encoder.load_state_dict(load_file(tmp_path / "encoder.safetensors"))
    pictures = np.random.default_rng(0).random((3, H, W))
    with torch.no_grad():
        means = encoder.eval()(torch.tensor(pictures, dtype=torch.float32).flatten(1))[0]
    torch.testing.assert_close(model.encode(list(pictures)), means)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("channels = [8, 4, 4]", "channels = [8, 4, 2]"),
         r"tensor 'head\.weight' has shape \(1, 4, 3, 3\).* needs \(1, 2, 3, 3\)"),
        (("channels = [8, 4, 4]", "channels = []"), "do not fit architecture 'bernoulli_conv'"),
        ((f"height = {H}\nwidth = {W}\nchannels", "height = 5\nwidth = 6\nchannels"),
         r"field 'decoder\.params\.height' must be 6"),
        (("channels = [4, 8]", "channels = [4, 8, 8]"),
         r"'conv_image_encoder': missing \['conv\.2\.bias', 'conv\.2\.weight'\]"),
        (("[encoder.params]\nheight = 6", "[encoder.params]\nheight = 7"),
         r"field 'encoder\.params\.height' must be 6"),
    ],
)  # fmt: skip
def test_broken_conv_image_manifests_name_the_tensor_or_field(  # type: ignore[no-untyped-def]
    tmp_path: Path, change, message
) -> None:
    path = _write_image(tmp_path)
    old, new = change
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ManifestError, match=message):
        load_user_manifest(path)


def test_conv_image_weights_of_the_wrong_shape_name_the_tensor(tmp_path: Path) -> None:
    path = _write_image(tmp_path)
    state = BernoulliConvDecoder(D, H, W, channels=CONV_CHANNELS).state_dict()
    state["head.weight"] = torch.zeros(1, 4, 5, 5)
    save_file(state, tmp_path / "decoder.safetensors")
    with pytest.raises(ManifestError, match=r"tensor 'head\.weight' has shape \(1, 4, 5, 5\)"):
        load_user_manifest(path)


def test_a_conv_image_decoder_on_sequence_data_is_refused(tmp_path: Path) -> None:
    block = (
        '[decoder]\narchitecture = "bernoulli_conv"\nfile = "decoder.safetensors"\n'
        f"[decoder.params]\nlatent_dim = {D}\nheight = {L}\nwidth = {V}\n"
    )
    with pytest.raises(ManifestError, match=r"field 'decoder\.architecture'"):
        load_user_manifest(_write(tmp_path, decoder_block=block))
