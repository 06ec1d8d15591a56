from __future__ import annotations

import math
import threading

import pytest
import torch
from reference import reference_gradient, reference_scales
from torch import Tensor, nn

from scales_viz import (
    DecoderError,
    InputTypeError,
    InputValueError,
    distance_to_data,
    likelihood,
    prior_logpdf,
    scales,
)
from scales_viz.models import SoftmaxFeedbackRNNDecoder, SoftmaxInputRNNDecoder
from scales_viz.score import logits_and_jacobian
from scales_viz.testing import (
    DECODER_KINDS,
    LinearBernoulliDecoder,
    LinearSoftmaxDecoder,
    WithoutStructuredJacobian,
    make_decoder,
)

D, L, V = 4, 6, 5


def _latents(n: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _relative_error(got: Tensor, want: Tensor) -> float:
    return float(((got.double().cpu() - want) / want.abs().clamp_min(1.0)).abs().max())


def _make(kind: str, **kwargs: object) -> tuple[nn.Module, str]:
    """`make_decoder`; a "-generic" suffix hides the structured Jacobian."""
    base = kind.removesuffix("-generic")
    dec, lik = make_decoder(base, D, L, V, **kwargs)  # type: ignore[arg-type]
    return (WithoutStructuredJacobian(dec) if kind != base else dec), lik


KINDS = (
    *DECODER_KINDS,
    "gru-generic",
    "lstm-generic",
    "gru-input-generic",
    "gru-input-hard-generic",
    "lstm-input-generic",
)


# --- exactness against the independent float64 reference ----------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("weight_scale", [1.0, 3.0])
def test_matches_reference_float64(kind: str, weight_scale: float) -> None:
    dec, lik = _make(kind, seed=1, dtype=torch.float64, weight_scale=weight_scale)
    z = _latents(5)
    assert _relative_error(scales(dec, z, likelihood=lik), reference_scales(dec, z, lik)) < 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference_float32(kind: str) -> None:
    dec, lik = _make(kind, seed=2, dtype=torch.float32, weight_scale=2.0)
    z = _latents(5, torch.float32)
    assert _relative_error(scales(dec, z, likelihood=lik), reference_scales(dec, z, lik)) < 2e-3


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_polarity_matches_reference(kind: str) -> None:
    dec, lik = make_decoder(kind, D, L, V, seed=3, dtype=torch.float64)
    z = _latents(3)
    got = scales(dec, z, likelihood=lik, polarity=True)
    assert _relative_error(got, reference_scales(dec, z, lik, polarity=True)) < 1e-6


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_paper_sized_rnn_matches_reference(cell: str) -> None:
    # The expressions-size decoder of the paper: d=25, L=19, V=15, hidden 100, 3 layers.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        dec = SoftmaxFeedbackRNNDecoder(25, 19, 15, cell=cell).double()  # type: ignore[arg-type]
    z = torch.randn(2, 25, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert _relative_error(scales(dec, z), reference_scales(dec, z)) < 1e-6


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_structured_jacobian_equals_forward_ad(cell: str) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(1)
        dec = SoftmaxFeedbackRNNDecoder(5, 7, 4, hidden=8, layers=3, cell=cell)  # type: ignore[arg-type]
    dec = dec.double().eval()
    z = _latents(3, seed=2)[:, :1].expand(3, 5) + _latents(3, seed=3)[:, :1]
    with torch.no_grad():
        logits, jac = dec.forward_with_jacobian(z)
        generic_logits, generic_jac = logits_and_jacobian(WithoutStructuredJacobian(dec), z)
        torch.testing.assert_close(logits, dec(z), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logits, generic_logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jac, generic_jac, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("feedback", ["soft", "hard"])
@pytest.mark.parametrize("layers", [1, 2])
def test_softmax_input_structured_jacobian_equals_forward_ad(
    cell: str, feedback: str, layers: int
) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(4)
        dec = SoftmaxInputRNNDecoder(
            5,
            7,
            4,
            hidden=8,
            layers=layers,
            embed=3,
            cell=cell,  # type: ignore[arg-type]
            feedback=feedback,
        )
    dec = dec.double().eval()
    z = 2.0 * _latents(6, seed=5).repeat(1, 2)[:, :5]
    with torch.no_grad():
        logits, jac = dec.forward_with_jacobian(z)
        generic_logits, generic_jac = logits_and_jacobian(WithoutStructuredJacobian(dec), z)
        torch.testing.assert_close(logits, dec(z), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logits, generic_logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jac, generic_jac, rtol=1e-10, atol=1e-12)
    if feedback == "soft":  # the fed-back softmax carries part of the tangent
        assert float(jac[:, :, 1:].abs().max()) > 0


@pytest.mark.parametrize("feedback", ["soft", "hard"])
def test_flagship_sized_input_rnn_matches_reference(feedback: str) -> None:
    # The shipped expressions decoders' sizes: d=25, L=19, V=15, one GRU layer of 256.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        dec = SoftmaxInputRNNDecoder(25, 19, 15, hidden=256, layers=1, feedback=feedback)
    dec = dec.double()
    z = torch.randn(2, 25, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert _relative_error(scales(dec, z), reference_scales(dec, z)) < 1e-6


@pytest.mark.parametrize("gain", [1.0, 0.25, 4.0])
def test_linear_decoders_match_hand_derived_score(gain: float) -> None:
    z = _latents(6) * 2
    cat = LinearSoftmaxDecoder(D, gain=gain, seed=5)
    ber = LinearBernoulliDecoder(D, gain=gain, seed=5)
    torch.testing.assert_close(scales(cat, z), cat.closed_form(z))
    torch.testing.assert_close(scales(cat, z, polarity=True), cat.closed_form(z, polarity=True))
    torch.testing.assert_close(scales(ber, z, likelihood="bernoulli"), ber.closed_form(z))
    # The hand derivation is itself checked against the literal definition.
    torch.testing.assert_close(reference_scales(cat, z), cat.closed_form(z))


def test_prior_weight_adds_gaussian_log_density() -> None:
    dec, lik = make_decoder("mlp", D, L, V, dtype=torch.float64)
    z = _latents(4)
    got = scales(dec, z, prior_weight=0.7)
    assert _relative_error(got, reference_scales(dec, z, lik, prior_weight=0.7)) < 1e-6
    torch.testing.assert_close(got - scales(dec, z), -0.7 * z.pow(2).sum(1) / 2)


# --- gradient --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_matches_central_differences(kind: str) -> None:
    dec, lik = _make(kind, seed=4, dtype=torch.float64)
    z = _latents(2).requires_grad_(True)
    (grad,) = torch.autograd.grad(scales(dec, z, likelihood=lik).sum(), z)
    want = reference_gradient(dec, z, lik)
    torch.testing.assert_close(grad, want, rtol=1e-5, atol=1e-6)


# --- invariances -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gru", "transformer", "bernoulli-mlp"])
def test_chunking_does_not_change_results(kind: str) -> None:
    dec, lik = make_decoder(kind, D, L, V, dtype=torch.float64)
    z = _latents(7)
    whole = scales(dec, z, likelihood=lik, chunk_size=7)
    for size in (1, 3, None):
        torch.testing.assert_close(scales(dec, z, likelihood=lik, chunk_size=size), whole)
    torch.testing.assert_close(scales(dec, z[4:5], likelihood=lik), whole[4:5])


def test_progress_reports_each_chunk() -> None:
    dec, _ = make_decoder("mlp", D, L, V)
    calls: list[tuple[int, int]] = []
    scales(dec, _latents(7, torch.float32), chunk_size=3, progress=lambda *a: calls.append(a))
    assert calls == [(3, 7), (6, 7), (7, 7)]


def test_result_follows_dtype_and_device(device: torch.device) -> None:
    for dtype in (torch.float32, torch.float64):
        dec, lik = make_decoder("gru", D, L, V, dtype=dtype)
        z = _latents(3, dtype).to(device)
        out = scales(dec.to(device), z, likelihood=lik)
        assert out.dtype == dtype and out.device.type == device.type and out.shape == (3,)
        assert torch.isfinite(out).all()


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_matches_the_float64_reference(kind: str) -> None:
    """Every architecture, structured and generic, exact on the GPU (bench/gpu_check.sh)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    dec, lik = _make(kind, seed=1, dtype=torch.float64, weight_scale=2.0)
    z = _latents(5)
    expected = reference_scales(dec, z, lik)
    on_gpu = scales(dec.cuda(), z.cuda(), likelihood=lik).cpu()
    assert _relative_error(on_gpu, expected) < 1e-6


def test_empty_batch_gives_empty_result() -> None:
    dec, _ = make_decoder("mlp", D, L, V)
    assert scales(dec, torch.zeros(0, D)).shape == (0,)


# --- state is left as found -------------------------------------------------------------------


def test_eval_mode_is_used_and_modes_restored() -> None:
    dec, _ = make_decoder("transformer", D, L, V, dtype=torch.float64)  # has dropout
    dec.train()
    dec.head.eval()  # a mixed state must come back exactly
    z = _latents(3)
    first, second = scales(dec, z), scales(dec, z)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert dec.training and not dec.head.training and dec.decoder.training
    torch.testing.assert_close(first, reference_scales(dec, z))


def test_caller_state_untouched() -> None:
    dec, _ = make_decoder("lstm", D, L, V)
    flags = [p.requires_grad for p in dec.parameters()]
    dec.project.weight.requires_grad_(False)
    flags[0] = False
    z = _latents(3, torch.float32)
    before = z.clone()
    backends = (
        torch.backends.mkldnn.enabled,
        torch.backends.cudnn.enabled,
        torch.backends.mha.get_fastpath_enabled(),
    )
    with torch.no_grad():
        scales(dec, z)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert [p.requires_grad for p in dec.parameters()] == flags
    assert torch.equal(z, before) and not z.requires_grad
    after = (
        torch.backends.mkldnn.enabled,
        torch.backends.cudnn.enabled,
        torch.backends.mha.get_fastpath_enabled(),
    )
    assert after == backends


def test_backends_restored_after_decoder_error() -> None:
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, z: Tensor) -> Tensor:
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("boom")
            return z[:, :, None].expand(-1, -1, 3)

    with pytest.raises(RuntimeError, match="boom"):
        scales(Exploding(), _latents(2))
    assert torch.backends.mkldnn.enabled and torch.backends.mha.get_fastpath_enabled()


def test_concurrent_callers_from_threads() -> None:
    dec, lik = make_decoder("lstm", D, L, V)
    z = _latents(4, torch.float32)
    want = scales(dec, z)
    errors: list[BaseException] = []
    results: list[Tensor] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(scales(dec, z, likelihood=lik))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 20
    for res in results:
        torch.testing.assert_close(res, want)
    assert torch.backends.mkldnn.enabled and torch.backends.mha.get_fastpath_enabled()


# --- degenerate points ------------------------------------------------------------------------


class _GatedDecoder(nn.Module):
    """Logits that are constant (zero Jacobian) where z_0 <= 0, NaN where z_1 > 5."""

    def forward(self, z: Tensor) -> Tensor:
        gate = (z[:, :1] > 0).to(z.dtype)
        u = z * gate
        u = torch.where(z[:, 1:2] > 5, torch.full_like(u, math.nan), u)
        return torch.stack([u, torch.zeros_like(u)], dim=-1)


def test_singular_and_nonfinite_points_are_flagged_individually() -> None:
    z = torch.tensor([[1.0, 0.2, 0.3], [-1.0, 0.2, 0.3], [1.0, 6.0, 0.3], [0.5, 0.1, -0.2]])
    out = scales(_GatedDecoder(), z.double())
    assert torch.isfinite(out[[0, 3]]).all()
    assert out[1] == -math.inf
    assert torch.isnan(out[2])


# --- bad input -------------------------------------------------------------------------------


def test_bad_latents_are_rejected_with_clear_errors() -> None:
    dec, _ = make_decoder("mlp", D, L, V)
    with pytest.raises(InputValueError, match=r"`z` must be 2-D.*got shape \(4,\).*z\[None\]"):
        scales(dec, torch.zeros(D))
    with pytest.raises(InputValueError, match=r"`z` must be 2-D.*\(2, 3, 4\)"):
        scales(dec, torch.zeros(2, 3, D))
    with pytest.raises(InputTypeError, match=r"floating-point.*torch.int64"):
        scales(dec, torch.zeros(2, D, dtype=torch.int64))
    with pytest.raises(InputTypeError, match=r"torch.Tensor.*got list"):
        scales(dec, [[0.0] * D])  # type: ignore[arg-type]
    bad = torch.zeros(5, D)
    bad[3, 1] = math.nan
    bad[4, 0] = math.inf
    with pytest.raises(InputValueError, match=r"`z` must be finite; rows \[3, 4\]"):
        scales(dec, bad)


def test_wrong_latent_size_names_z_and_sizes() -> None:
    dec, _ = make_decoder("gru", D, L, V)
    with pytest.raises(DecoderError, match=r"rejected `z` of shape \(3, 7\).*latent size 7"):
        scales(dec, torch.zeros(3, 7))


def test_wrong_output_rank_names_the_decoder_output() -> None:
    cat, _ = make_decoder("mlp", D, L, V)
    ber, _ = make_decoder("bernoulli-mlp", D, L, V)
    with pytest.raises(DecoderError, match=r"`n x P`.*got shape \(1, 6, 5\).*'categorical'"):
        scales(cat, _latents(2, torch.float32), likelihood="bernoulli")
    with pytest.raises(DecoderError, match=r"`n x L x V`.*got shape \(1, 30\).*'bernoulli'"):
        scales(ber, _latents(2, torch.float32))
    with pytest.raises(DecoderError, match="floating tensor"):
        scales(lambda z: z.argmax(1), _latents(2))


def test_bad_options_are_rejected() -> None:
    dec, _ = make_decoder("mlp", D, L, V)
    z = _latents(2, torch.float32)
    with pytest.raises(InputValueError, match="`likelihood` must be one of"):
        scales(dec, z, likelihood="gaussian")  # type: ignore[arg-type]
    with pytest.raises(InputValueError, match="`chunk_size` must be a positive int"):
        scales(dec, z, chunk_size=0)
    with pytest.raises(InputValueError, match="`prior_weight` must be a finite number"):
        scales(dec, z, prior_weight=math.nan)


# --- baselines -------------------------------------------------------------------------------


def test_likelihood_is_log_probability_of_argmax_decoding() -> None:
    dec, _ = make_decoder("gru", D, L, V, dtype=torch.float64)
    z = _latents(4)
    with torch.no_grad():
        logp = torch.log_softmax(dec.eval()(z), -1)
    want = logp.max(-1).values.sum(-1)
    torch.testing.assert_close(likelihood(dec, z), want)
    torch.testing.assert_close(likelihood(dec, z, chunk_size=1), want)


def test_likelihood_is_detached_unless_z_requires_grad() -> None:
    dec, _ = make_decoder("mlp", D, L, V)  # parameters require grad
    z = _latents(3, torch.float32)
    assert not likelihood(dec, z).requires_grad
    assert likelihood(dec, z.requires_grad_(True)).requires_grad
    with pytest.raises(DecoderError, match=r"rejected `z` of shape \(2, 7\)"):
        likelihood(dec, torch.zeros(2, 7))


def test_bernoulli_likelihood() -> None:
    dec, _ = make_decoder("bernoulli-mlp", D, L, V, dtype=torch.float64)
    z = _latents(4)
    with torch.no_grad():
        p = torch.sigmoid(dec(z))
    want = torch.log(torch.maximum(p, 1 - p)).sum(1)
    torch.testing.assert_close(likelihood(dec, z, likelihood="bernoulli"), want)


def test_prior_logpdf_matches_torch_distributions() -> None:
    z = _latents(5)
    for scale in (1.0, 0.1):
        want = torch.distributions.Normal(0.0, scale).log_prob(z).sum(1)
        torch.testing.assert_close(prior_logpdf(z, scale), want)
    torch.testing.assert_close(prior_logpdf(z, normalised=False), -z.pow(2).sum(1) / 2)
    with pytest.raises(InputValueError, match="`scale` must be a positive"):
        prior_logpdf(z, 0.0)


def test_distance_to_data_is_mean_of_k_nearest() -> None:
    z = _latents(6)
    data = _latents(20, seed=9)
    dist = ((z[:, None, :] - data[None]) ** 2).sum(-1).sqrt()
    want = -dist.sort(1).values[:, :3].mean(1)
    torch.testing.assert_close(distance_to_data(z, data), want)
    torch.testing.assert_close(distance_to_data(z, data, k=1), -dist.min(1).values)
    with pytest.raises(InputValueError, match=r"`data_latents` must be `n x 4`.*latent size 3"):
        distance_to_data(z, data[:, :3])
    with pytest.raises(InputValueError, match="at least k=3 rows; got 2"):
        distance_to_data(z, data[:2])


class _InstanceNormDecoder(nn.Module):
    """A conv decoder with instance norm (computes statistics of its input)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(D, 3 * L)
        self.norm = nn.InstanceNorm1d(3, affine=True)
        self.conv = nn.Conv1d(3, V, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        return self.conv(torch.tanh(self.norm(self.lin(z).view(-1, 3, L)))).transpose(1, 2)


def test_gradient_through_instance_norm() -> None:
    # PyTorch's forward-AD formulas for layer/instance norm hold their statistics constant;
    # the engine must still give the exact gradient.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        dec = _InstanceNormDecoder().double()
    z = _latents(2).requires_grad_(True)
    torch.testing.assert_close(scales(dec, z), reference_scales(dec, z))
    (grad,) = torch.autograd.grad(scales(dec, z).sum(), z)
    torch.testing.assert_close(grad, reference_gradient(dec, z), rtol=1e-5, atol=1e-6)


def test_a_decoders_own_jacobian_is_never_overwritten() -> None:
    """The scoring loop uses the generic path's Jacobian as scratch space, never one that a
    decoder's forward_with_jacobian hands back (it may keep it)."""

    class Cached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(6)
            self.logits = torch.randn(2, 4, 3)
            self.jacobian = torch.randn(5, 2, 4, 3)

        def forward(self, z: Tensor) -> Tensor:
            return self.logits[: z.shape[0]]

        def forward_with_jacobian(self, z: Tensor) -> tuple[Tensor, Tensor]:
            return self.logits, self.jacobian

    decoder = Cached()
    kept = decoder.jacobian.clone()
    first = scales(decoder, torch.zeros(2, 5))
    torch.testing.assert_close(decoder.jacobian, kept, rtol=0, atol=0)
    torch.testing.assert_close(scales(decoder, torch.zeros(2, 5)), first, rtol=0, atol=0)
