"""The bundled digits-2d model: loading, shapes, metrics and its ScaLES."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from reference import reference_scales

import scales_viz
from scales_viz.models import BernoulliMLPDecoder, bundled
from scales_viz.models.bundled import load_digits2d_decoder, load_digits2d_metrics

FAR_RADIUS = 6.0


def test_decoder_loads_in_eval_mode() -> None:
    decoder = load_digits2d_decoder()
    assert isinstance(decoder, BernoulliMLPDecoder)
    assert not decoder.training


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_decoder_maps_2d_latents_to_64_logits(dtype: torch.dtype, device: torch.device) -> None:
    decoder = load_digits2d_decoder().to(device=device, dtype=dtype)
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)
    with torch.no_grad():
        logits = decoder(z)
    assert logits.shape == (5, 64)
    assert logits.dtype == dtype
    assert torch.isfinite(logits).all()


def test_each_load_returns_a_fresh_module() -> None:
    first, second = load_digits2d_decoder(), load_digits2d_decoder()
    assert first is not second
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_scales_on_bundled_decoder_matches_reference() -> None:
    decoder = load_digits2d_decoder().double()
    z = torch.tensor([[0.0, 0.0], [1.5, -0.5], [FAR_RADIUS, 0.0]], dtype=torch.float64)
    score = scales_viz.scales(decoder, z, likelihood="bernoulli")
    torch.testing.assert_close(score, reference_scales(decoder, z, "bernoulli"))


def test_metrics_record_training_and_beat_mean_image() -> None:
    metrics = load_digits2d_metrics()
    for key in ("seed", "epochs", "train_elbo", "held_out_elbo", "held_out_bce", "command"):
        assert key in metrics
    assert metrics["latent_dim"] == 2
    held_out_bce = float(str(metrics["held_out_bce"]))
    assert held_out_bce < float(str(metrics["held_out_bce_mean_image_baseline"]))
    assert held_out_bce > float(str(metrics["held_out_bce_floor_target_entropy"]))


def test_missing_assets_name_path_and_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bundled, "DIGITS2D_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape("scripts/train_digits2d.py")) as info:
        load_digits2d_decoder()
    assert str(tmp_path) in str(info.value)
    with pytest.raises(FileNotFoundError, match=re.escape("metrics.json")):
        load_digits2d_metrics()
