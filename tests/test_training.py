"""Training recipes: determinism per seed, files a loader accepts, and no global side effects."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from scales_viz.errors import InputValueError
from scales_viz.models import load_model_dir
from scales_viz.models.decoders import SoftmaxInputRNNDecoder
from scales_viz.testing import make_decoder
from scales_viz.training.recipes import (
    RECIPES,
    DigitsRecipe,
    SequenceRecipe,
    _teacher_forcing,
    train_builtin,
    train_digits,
    train_sequence,
)
from scales_viz.training.vae import (
    Checkpointing,
    TrainConfig,
    kl_to_prior,
    kl_weight,
    learning_rate,
    load_checkpoint,
    save_checkpoint,
    seeded,
)

WEIGHT_FILES = ("decoder", "encoder", "reference")


def _tiny_digits() -> DigitsRecipe:
    recipe = RECIPES["digits-2d"]
    assert isinstance(recipe, DigitsRecipe)
    return replace(recipe, classifier_epochs=5, config=replace(recipe.config, epochs=2))


def _tiny_expressions() -> SequenceRecipe:
    recipe = RECIPES["expressions"]
    assert isinstance(recipe, SequenceRecipe)
    small = {"hidden": 16, "layers": 1, "embed": 8, "cell": "gru", "dropout": 0.0}
    return replace(
        recipe,
        n_train=256,
        n_held_out=64,
        n_reference=32,
        decoder={**small, "feedback": "soft"},
        encoder={"channels": [4, 4, 4], "kernels": [2, 3, 4], "hidden": 16},
        load=lambda seed, data_dir: (
            [f"x+{k}" for k in "123"]
            + [f"{a}*{b}" for a in "x123" for b in "x123"]
            + [f"sin({a})/{b}" for a in "x123" for b in "x123"] * 20
        ),
        config=replace(recipe.config, epochs=1, batch_size=64),
    )


def _bytes(directory: Path) -> dict[str, bytes]:
    return {name: (directory / f"{name}.safetensors").read_bytes() for name in WEIGHT_FILES}


def test_digits_training_is_deterministic_per_seed(tmp_path: Path) -> None:
    recipe = _tiny_digits()
    train_digits(recipe, 3, tmp_path / "a")
    train_digits(recipe, 3, tmp_path / "b")
    train_digits(recipe, 4, tmp_path / "c")
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert _bytes(tmp_path / "a")["decoder"] != _bytes(tmp_path / "c")["decoder"]


def test_trained_digits_directory_loads_and_records_its_training(tmp_path: Path) -> None:
    manifest = train_digits(_tiny_digits(), 0, tmp_path)
    model = load_model_dir(tmp_path)
    assert model.latent_dim == 2 and len(model.data_objects) == 1797
    assert manifest["training"]["seed"] == 0 and manifest["training"]["epochs"] == 2
    assert set(manifest["metrics"]) >= {"held_out", "train", "classifier"}
    log = json.loads((tmp_path / "training_log.json").read_text())
    assert [entry["epoch"] for entry in log] == [1.0, 2.0]


def test_sequence_training_is_deterministic_and_loads(tmp_path: Path) -> None:
    recipe = _tiny_expressions()
    with pytest.raises(InputValueError, match="usable examples"):
        train_sequence(replace(recipe, n_train=10**6), 0, tmp_path / "x", tmp_path)
    train_sequence(recipe, 1, tmp_path / "a", tmp_path)
    train_sequence(recipe, 1, tmp_path / "b", tmp_path)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    model = load_model_dir(tmp_path / "a")
    assert model.latent_dim == 25 and len(model.data_objects) == 32
    assert set(model.data_objects) <= set(recipe.load(1, tmp_path))
    metrics = json.loads((tmp_path / "a" / "manifest.json").read_text())["metrics"]
    assert 0.0 <= metrics["held_out"]["token_accuracy"] <= 1.0


def test_training_leaves_global_random_state_and_threads_alone(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    train_digits(_tiny_digits(), 0, tmp_path)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_seeded_block_is_reproducible() -> None:
    with seeded(5, 1):
        first = torch.randn(3)
    with seeded(5, 1):
        second = torch.randn(3)
    assert torch.equal(first, second)


def test_unknown_model_cannot_be_trained(tmp_path: Path) -> None:
    with pytest.raises(InputValueError, match="no built-in model 'nope'"):
        train_builtin("nope", seed=0, out=tmp_path, data_dir=tmp_path)


def test_kl_weight_warms_up_linearly_then_holds() -> None:
    config = TrainConfig(seed=0, epochs=4, batch_size=1, learning_rate=1.0, kl_warmup_epochs=2)
    assert [kl_weight(p, config) for p in (0.0, 0.5, 1.0, 2.0, 3.5)] == [0, 0.25, 0.5, 1, 1]
    quarter = replace(config, beta=0.25)
    assert kl_weight(5.0, quarter) == 0.25
    assert kl_weight(0.0, replace(config, kl_warmup_epochs=0)) == 1.0


def test_kl_to_prior_matches_torch_distributions() -> None:
    gen = torch.Generator().manual_seed(0)
    mu, sigma = torch.randn(4, 3, generator=gen), torch.rand(4, 3, generator=gen) + 0.1
    posterior = torch.distributions.Normal(mu, sigma)
    prior = torch.distributions.Normal(torch.zeros(3), 0.5 * torch.ones(3))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(-1)
    torch.testing.assert_close(kl_to_prior(mu, sigma, 0.5), expected)


def test_shipped_digits_2d_is_reproduced_by_its_recipe(tmp_path: Path) -> None:
    """Re-running the real recipe gives the shipped model (bit-exact on the machine that
    trained it; other CPUs may round differently, so compare the measured fit)."""
    shipped = load_model_dir(
        Path(__file__).resolve().parents[1] / "scales_viz/assets/models/digits-2d"
    )
    manifest = train_builtin("digits-2d", seed=0, out=tmp_path, data_dir=tmp_path)
    ours, theirs = manifest["metrics"]["held_out"], shipped.manifest["metrics"]["held_out"]
    assert abs(ours["elbo"] - theirs["elbo"]) < 0.5
    assert abs(ours["reconstruction_accuracy"] - theirs["reconstruction_accuracy"]) < 0.05
    assert manifest["training"]["seed"] == shipped.manifest["training"]["seed"] == 0


def test_teacher_forcing_matches_free_running_decoding_when_outputs_are_one_hot() -> None:
    decoder, _ = make_decoder("gru-input", 3, 7, 5, seed=1, dtype=torch.float64)
    assert isinstance(decoder, SoftmaxInputRNNDecoder)
    with torch.no_grad():  # huge logits: every step's softmax is one-hot
        decoder.out.weight.mul_(1e4)
        decoder.out.bias.mul_(1e4)
    decoder.eval()
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        free = decoder(z)
        tokens = free.argmax(-1)
        forced = decoder.forward_teacher(z, tokens)
    assert torch.softmax(free, -1).amax(-1).min() > 1 - 1e-9  # the softmax is one-hot
    torch.testing.assert_close(forced, free, rtol=1e-6, atol=1e-6)


def test_teacher_forcing_refuses_other_decoders() -> None:
    decoder, _ = make_decoder("gru", 3, 7, 5)
    with pytest.raises(InputValueError, match="SoftmaxInputRNNDecoder"):
        _teacher_forcing(0.0)(decoder, torch.zeros(2, 3), torch.zeros(2, 7, dtype=torch.long))


def _tiny_ar() -> SequenceRecipe:
    recipe = _tiny_expressions()
    return replace(
        recipe,
        name="expressions-ar",
        decoder={**recipe.decoder, "feedback": "hard"},
        teacher_forcing=True,
        word_dropout=0.1,
        config=replace(recipe.config, epochs=2, free_bits=0.05, final_learning_rate=1e-4),
    )


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    recipe = _tiny_ar()
    train_sequence(recipe, 2, tmp_path / "whole", tmp_path)
    checkpoint = Checkpointing(tmp_path / "state.pt", every=2, max_seconds=0.0)
    # A zero time budget stops after the first step, keeping the state; each resumed call
    # takes one more step, then one call runs to the end.
    first = train_sequence(recipe, 2, tmp_path / "part", tmp_path, checkpoint)
    assert first["training"]["finished"] is False and first["training"]["steps_done"] == 1
    resumed = replace(checkpoint, resume=True)
    second = train_sequence(recipe, 2, tmp_path / "part", tmp_path, resumed)
    assert second["training"]["steps_done"] == 2
    last = train_sequence(
        recipe, 2, tmp_path / "part", tmp_path, replace(resumed, max_seconds=None)
    )
    assert last["training"]["finished"] is True
    assert _bytes(tmp_path / "part") == _bytes(tmp_path / "whole")
    log = json.loads((tmp_path / "part" / "training_log.json").read_text())
    assert [entry["epoch"] for entry in log if "finished" not in entry or entry["finished"]] == [
        1.0,
        2.0,
    ]
    state = load_checkpoint(tmp_path / "state.pt")  # plain tensors only (weights_only)
    assert state["step"] == last["training"]["steps_done"]


def test_a_training_state_is_saved_in_pieces_and_refused_when_one_is_altered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scales_viz.training.vae as vae

    state = {"weights": torch.arange(5000, dtype=torch.float64), "step": 7, "log": "[]"}
    monkeypatch.setattr(vae, "CHECKPOINT_PART_BYTES", 10_000)
    path = tmp_path / "state.pt"
    save_checkpoint(path, state)
    pieces = sorted(p.name for p in tmp_path.glob("state.pt.*"))
    assert len(pieces) >= 4 and all((tmp_path / p).stat().st_size <= 10_000 for p in pieces)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["weights"], state["weights"]) and loaded["step"] == 7
    # A smaller state later leaves no stale pieces behind.
    save_checkpoint(path, {"step": 8})
    assert sorted(p.name for p in tmp_path.glob("state.pt.*")) == ["state.pt.000"]
    assert load_checkpoint(path)["step"] == 8
    piece = tmp_path / "state.pt.000"
    piece.write_bytes(piece.read_bytes()[:-1] + b"x")
    with pytest.raises(InputValueError, match=r"state.pt.000: expected .* bytes"):
        load_checkpoint(path)
    # A single torch.save file (the format before pieces) still loads.
    torch.save({"step": 3}, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["step"] == 3
    (tmp_path / "junk.pt").write_text("not a state")
    with pytest.raises(InputValueError, match="not a training state"):
        load_checkpoint(tmp_path / "junk.pt")


def test_learning_rate_decays_on_a_cosine_to_the_final_rate() -> None:
    config = TrainConfig(
        seed=0,
        epochs=1,
        batch_size=1,
        learning_rate=1e-3,
        kl_warmup_epochs=0,
        final_learning_rate=1e-4,
    )
    assert learning_rate(0, 100, config) == pytest.approx(1e-3)
    assert learning_rate(50, 100, config) == pytest.approx(5.5e-4)
    assert learning_rate(100, 100, config) == pytest.approx(1e-4)
    assert learning_rate(7, 100, replace(config, final_learning_rate=None)) == 1e-3


def test_word_dropout_blanks_a_share_of_the_fed_back_tokens() -> None:
    decoder, _ = make_decoder("gru-input", 3, 7, 5, seed=1, dtype=torch.float64)
    assert isinstance(decoder, SoftmaxInputRNNDecoder)
    decoder.eval()  # no dropout between the RNN's layers: only the word dropout differs
    z = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tokens = torch.randint(0, 5, (64, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = decoder.forward_teacher(z, tokens)
        torch.manual_seed(0)
        dropped = decoder.forward_teacher(z, tokens, word_dropout=0.5)
    assert torch.equal(plain[:, 0], dropped[:, 0])  # the first step reads no token anyway
    # Step 1 reads token 0 only: it changes exactly where that token was dropped (about half).
    changed = (plain[:, 1] - dropped[:, 1]).abs().amax(-1) > 0
    assert 0.3 < float(changed.double().mean()) < 0.7
