"""The ScaLES authors' released checkpoints (read from ../shared/scales-paper, never copied):
they load into every part of scales-viz, and broken or hostile files are refused cleanly."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from scales_viz.errors import InputValueError
from scales_viz.models import load_model
from scales_viz.models.manifest import ManifestError
from scales_viz.models.paper import (
    AUTHORS_EXPRESSION_COUNT,
    PAPER_MODELS,
    authors_expressions,
    load_paper_model,
    paper_dir,
)

PAPER = paper_dir()
pytestmark = pytest.mark.skipif(
    not (PAPER / "expressions_gru_1.pth").exists(), reason=f"no ScaLES checkpoints in {PAPER}"
)


@pytest.mark.parametrize("name", sorted(PAPER_MODELS))
def test_each_checkpoint_rebuilds_decoder_encoder_and_scores(name: str) -> None:
    model = load_model(f"scales-paper:{name}", PAPER)
    spec = PAPER_MODELS[name]
    assert model.latent_dim == spec.latent_dim and model.prior_scale == spec.prior_scale
    z = model.sample_prior(4, seed=0)
    logits = model.decode_logits(z)
    assert logits.shape == (4, spec.seq_len, spec.vocab_size)
    assert all(isinstance(text, str) for text in model.decode(z))
    scores = model.scales(z.double())
    assert torch.isfinite(scores).all()
    # the reference latents are encoder means of the reference objects
    again = model.encode(model.data_objects[:5])
    torch.testing.assert_close(again, model.data_latents[:5])
    assert set(model.objectives) == (
        {"fit_target"} if spec.task == "expressions" else {"penalized_logp", "qed"}
    )


def test_expressions_gru_prior_validity_is_about_sixty_percent() -> None:
    model = load_paper_model("expressions_gru_1", PAPER)
    valid = model.validity(model.decode(model.sample_prior(500, seed=0))).mean()
    assert 0.5 <= valid <= 0.7, valid  # the authors' README: about 60%


#: The authors' training shape, written independently of `authors_expressions`.
_T, _CALL = "[x123]", r"(?:\(|sin\(|exp\()"
AUTHORS_SHAPE = re.compile(
    rf"{_T}[+*/]{_T}\+(?:{_CALL}{_T}\)|{_T})\+(?:{_CALL}{_T}(?:[+*/]{_T})?\)|{_T})"
)


def _skeleton(text: str) -> str:
    return re.sub("[x123]", "t", text)


def test_expression_encoder_round_trips_the_shape_of_the_authors_data() -> None:
    """Encoder mean, then argmax decoding, gives back each expression's skeleton.

    Measured on these 200: 0.98 (every other input layout tried, with the one-hot read as
    `L x V`, positions flattened first, BatchNorm before ReLU or the pad on the left, gives
    at most 0.25). Terminals are not kept: the released encoder's first convolution has
    near-identical filters for x, 1, 2 and 3, so exact round trips are rare even on the
    authors' own data, and expressions of other shapes (scales-viz's grammar sampler) decode
    to training-shaped ones.
    """
    model = load_paper_model("expressions_gru_1", PAPER)
    texts = authors_expressions(200, seed=0)
    decoded = model.decode(model.encode(texts))
    rate = np.mean([_skeleton(a) == _skeleton(b) for a, b in zip(texts, decoded, strict=True)])
    assert rate >= 0.9, rate
    # control: valid decodings of prior samples round-trip their skeleton too (measured 0.99)
    prior = [t for t in model.decode(model.sample_prior(500, seed=0)) if model.is_valid(t)]
    again = model.decode(model.encode(prior))
    rate = np.mean([_skeleton(a) == _skeleton(b) for a, b in zip(prior, again, strict=True)])
    assert rate >= 0.9, rate


def test_authors_expressions_are_distinct_deterministic_and_of_the_authors_shape() -> None:
    texts = authors_expressions(2000, seed=0)
    assert texts == authors_expressions(2000, seed=0) != authors_expressions(2000, seed=1)
    assert len(set(texts)) == 2000 and all(AUTHORS_SHAPE.fullmatch(t) for t in texts)
    assert max(map(len, texts)) <= 19
    # every part turns up: sin/exp/brackets in both places, bare terminals, all operators
    assert {t[1] for t in texts} == set("+*/")
    assert any(t.endswith("+x") for t in texts) and any("+sin(" in t for t in texts)
    everything = authors_expressions(AUTHORS_EXPRESSION_COUNT, seed=3)
    assert len(set(everything)) == AUTHORS_EXPRESSION_COUNT == 48 * 16 * 160
    with pytest.raises(InputValueError, match="n must be"):
        authors_expressions(AUTHORS_EXPRESSION_COUNT + 1)


def test_expression_reference_data_is_of_the_authors_shape_and_decodes_valid() -> None:
    """The reference ("data") latents decode valid: measured 1.0 for both expression models
    (with scales-viz's own grammar as the data it was 0.765 for expressions_gru_1)."""
    for name in ("expressions_gru_1", "expressions_lstm_1"):
        model = load_paper_model(name, PAPER)
        assert model.data_objects == authors_expressions(1000, seed=0)
        assert all(AUTHORS_SHAPE.fullmatch(t) for t in model.data_objects)
        assert "authors' training shape" in model.manifest["dataset"]["reference data"]
        valid = model.validity(model.decode(model.data_latents)).mean()
        assert valid >= 0.95, (name, valid)


def test_paper_lstm_decoder_matches_a_plain_reimplementation() -> None:
    """An independent forward pass written from the authors' README, on their weights."""
    model = load_paper_model("expressions_lstm_1", PAPER)
    state = torch.load(PAPER / "expressions_lstm_1.pth", map_location="cpu", weights_only=True)
    rnn = torch.nn.LSTM(100, 100, 3, batch_first=True)
    rnn.load_state_dict({k[len("decoder.gru.") :]: v for k, v in state.items()
                         if k.startswith("decoder.gru.")})  # fmt: skip
    rnn.eval()
    z = model.sample_prior(3, seed=5)
    with torch.no_grad():
        context = z @ state["decoder.project.weight"].T + state["decoder.project.bias"]
        outputs, _ = rnn(context[:, None, :].expand(3, 19, 100).contiguous())
        p = torch.zeros(3, 15)
        logits = []
        for t in range(19):
            fed = p @ state["decoder.output_projection.weight"].T
            fed = fed + state["decoder.output_projection.bias"]
            step = torch.cat([outputs[:, t], fed], dim=1)
            step = step @ state["decoder.out.weight"].T + state["decoder.out.bias"]
            logits.append(step)
            p = torch.softmax(step, dim=1)
        expected = torch.stack(logits, dim=1)
    torch.testing.assert_close(model.decode_logits(z), expected, rtol=1e-4, atol=1e-5)


def _copy(tmp_path: Path, name: str = "expressions_gru_1") -> Path:
    shutil.copy(PAPER / f"{name}.pth", tmp_path / f"{name}.pth")
    return tmp_path


def test_a_pickle_with_a_code_payload_is_refused_and_never_run(tmp_path: Path) -> None:
    tripwire = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (tripwire,))

    with (tmp_path / "expressions_gru_1.pth").open("wb") as handle:
        pickle.dump({"decoder.project.weight": Payload()}, handle)
    with pytest.raises(ManifestError, match="not a plain PyTorch state dict"):
        load_paper_model("expressions_gru_1", tmp_path)
    assert not tripwire.exists()


def test_wrong_shapes_and_missing_tensors_name_the_tensor(tmp_path: Path) -> None:
    state = torch.load(PAPER / "expressions_gru_1.pth", map_location="cpu", weights_only=True)
    bad = dict(state)
    bad["decoder.out.weight"] = torch.zeros(15, 7)
    torch.save(bad, tmp_path / "expressions_gru_1.pth")
    with pytest.raises(ManifestError, match=r"'decoder\.out\.weight' has shape \(15, 7\)"):
        load_paper_model("expressions_gru_1", tmp_path)
    del bad["decoder.out.weight"]
    torch.save(bad, tmp_path / "expressions_gru_1.pth")
    with pytest.raises(ManifestError, match=r"'decoder\.out\.weight' is missing"):
        load_paper_model("expressions_gru_1", tmp_path)
    torch.save([1, 2, 3], tmp_path / "expressions_gru_1.pth")
    with pytest.raises(ManifestError, match="dict of named tensors"):
        load_paper_model("expressions_gru_1", tmp_path)


def test_missing_files_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="SCALES_PAPER_DIR"):
        load_paper_model("expressions_gru_1", tmp_path)
    with pytest.raises(InputValueError, match="no released ScaLES checkpoint"):
        load_model("scales-paper:expressions_gru_9", PAPER)
    _copy(tmp_path, "smiles_gru_1")
    with pytest.raises(ManifestError, match="vocabulary file is missing"):
        load_paper_model("smiles_gru_1", tmp_path)
    (tmp_path / "smiles_vocab.yaml").write_text("C: 0\nbroken line\n")
    with pytest.raises(ManifestError, match="line 2"):
        load_paper_model("smiles_gru_1", tmp_path)


def test_smiles_vocabulary_is_read_by_index_with_the_pad_last() -> None:
    model = load_paper_model("smiles_gru_1", PAPER)
    vocab = model.codec.vocab
    assert len(vocab) == 35 and vocab[0] == "C" and vocab[3] == "c" and vocab[-1] == " "
    assert vocab[27] == "\\" and vocab[12] == "["
    np.testing.assert_array_equal(
        model.codec.to_indices(["CCl"])[0, :3].numpy(), [0, 0, vocab.index("l")]
    )
