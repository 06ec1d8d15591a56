"""The fused forward-mode rule for recurrent layers (scales_viz.tangents).

Every configuration the rule takes over is held to two independent references: PyTorch's own
forward-mode path through its GRU/LSTM decomposition (same Jacobian to float64 round-off), and
the float64 reverse-mode ScaLES reference of tests/reference.py.
"""

from __future__ import annotations

import itertools
import threading

import pytest
import torch
from reference import reference_scales
from torch import Tensor, nn

from scales_viz import scales
from scales_viz.score import forward_ad_backends, logits_and_jacobian
from scales_viz.tangents import (
    fast_zero_tangent_shapes,
    fused_recurrent_tangents,
    supports_fused_tangents,
)

D, H, L, V = 4, 6, 5, 3


class RecurrentDecoder(nn.Module):
    """A decoder exercising every input of the rule: a time-varying input sequence, an
    initial state computed from `z`, and the final states used in the output."""

    def __init__(
        self,
        cell: str,
        *,
        batch_first: bool = True,
        layers: int = 2,
        initial_state: bool = True,
        bias: bool = True,
        bidirectional: bool = False,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        kwargs: dict[str, object] = {"proj_size": proj_size} if cell == "lstm" else {}
        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_class(
            H, H, layers, batch_first=batch_first, bias=bias, bidirectional=bidirectional,
            **kwargs,
        )  # fmt: skip
        self.cell, self.batch_first, self.initial_state = cell, batch_first, initial_state
        directions = 2 if bidirectional else 1
        out_size = (proj_size or H) * directions
        self.state_size = (proj_size or H, H)
        self.states = layers * directions
        self.inp = nn.Linear(D, H)
        self.h0 = nn.Linear(D, self.states * (proj_size or H))
        self.c0 = nn.Linear(D, self.states * H)
        self.out = nn.Linear(out_size + (proj_size or H) + (H if cell == "lstm" else 0), V)

    def forward(self, z: Tensor) -> Tensor:
        ramp = torch.linspace(0.5, 1.5, L, dtype=z.dtype)[None, :, None]
        x = torch.tanh(self.inp(z))[:, None] * ramp  # n x L x H, different at every step
        if not self.batch_first:
            x = x.transpose(0, 1)
        n = z.shape[0]
        hx: object = None
        if self.initial_state:
            h0 = torch.tanh(self.h0(z)).view(n, self.states, -1).transpose(0, 1).contiguous()
            c0 = torch.sin(self.c0(z)).view(n, self.states, -1).transpose(0, 1).contiguous()
            hx = (h0, c0) if self.cell == "lstm" else h0
        out, final = self.rnn(x, hx)
        if not self.batch_first:
            out = out.transpose(0, 1)
        parts = [out, final[0][-1] if self.cell == "lstm" else final[-1]]
        if self.cell == "lstm":
            parts.append(final[1][-1])
        tail = torch.cat(parts[1:], dim=-1)[:, None].expand(-1, L, -1)
        return self.out(torch.cat([parts[0], tail], dim=-1))


CONFIGS = [
    {"cell": cell, "batch_first": bf, "layers": layers, "initial_state": hx, "bias": bias}
    for cell, bf, layers, hx, bias in itertools.product(
        ("gru", "lstm"), (True, False), (1, 2), (True, False), (True, False)
    )
]


def _jacobians(decoder: nn.Module, z: Tensor, fused: bool) -> tuple[Tensor, Tensor]:
    with forward_ad_backends(), torch.no_grad():
        if fused:
            return logits_and_jacobian(decoder, z)
        # A plain function of z: the module walk finds nothing to swap.
        return logits_and_jacobian(lambda x: decoder(x), z)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_fused_rule_equals_pytorch_forward_mode(config: dict[str, object]) -> None:
    torch.manual_seed(0)
    decoder = RecurrentDecoder(**config).double().eval()  # type: ignore[arg-type]
    z = torch.randn(3, D, dtype=torch.float64)
    logits, jac = _jacobians(decoder, z, fused=True)
    ref_logits, ref_jac = _jacobians(decoder, z, fused=False)
    assert jac.shape == (D, 3, L, V)
    torch.testing.assert_close(logits, ref_logits, rtol=0, atol=1e-12)
    torch.testing.assert_close(jac, ref_jac, rtol=0, atol=1e-12)
    assert jac.abs().amax() > 1e-3  # the Jacobian is not trivially zero


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scales_with_fused_rule_matches_the_float64_reference(
    cell: str, dtype: torch.dtype
) -> None:
    torch.manual_seed(1)
    decoder = RecurrentDecoder(cell).to(dtype).eval()
    z = torch.randn(4, D, dtype=dtype)
    expected = reference_scales(decoder, z)
    got = scales(decoder, z)
    rtol = 1e-6 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(got.double(), expected, rtol=rtol, atol=0)


def test_gradient_of_scales_does_not_use_the_rule_and_stays_exact() -> None:
    """The rule has no backward: with z requiring grad, PyTorch's own path is taken."""
    torch.manual_seed(2)
    decoder = RecurrentDecoder("gru", layers=1).double().eval()
    z = torch.randn(2, D, dtype=torch.float64, requires_grad=True)
    scales(decoder, z).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    step = 1e-6
    shift = torch.zeros_like(z)
    shift[0, 1] = step
    central = (
        scales(decoder, (z + shift).detach()) - scales(decoder, (z - shift).detach())
    ).sum() / (2 * step)
    torch.testing.assert_close(z.grad[0, 1], central, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "config", [{"bidirectional": True}, {"proj_size": 3}], ids=["bidirectional", "proj_size"]
)
def test_unsupported_layers_keep_pytorchs_path_and_stay_exact(config: dict[str, object]) -> None:
    torch.manual_seed(3)
    decoder = RecurrentDecoder("lstm", **config).double().eval()  # type: ignore[arg-type]
    assert not supports_fused_tangents(decoder.rnn)
    z = torch.randn(2, D, dtype=torch.float64)
    torch.testing.assert_close(scales(decoder, z), reference_scales(decoder, z), rtol=1e-6, atol=0)


def test_swapped_forwards_are_restored_even_after_an_error() -> None:
    decoder = RecurrentDecoder("gru")
    assert supports_fused_tangents(decoder.rnn)
    with pytest.raises(RuntimeError, match="boom"), fused_recurrent_tangents(decoder):
        assert "forward" in vars(decoder.rnn)
        raise RuntimeError("boom")
    assert "forward" not in vars(decoder.rnn)
    # Outside the block, the module is its ordinary self (a packed sequence still works).
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(2, L, H), [L, 2], batch_first=True)
    decoder.rnn(packed)


def test_swapped_forward_passes_packed_sequences_to_pytorch() -> None:
    decoder = RecurrentDecoder("gru").eval()
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(2, L, H), [L, 2], batch_first=True)
    expected, _ = decoder.rnn(packed)
    with fused_recurrent_tangents(decoder), torch.no_grad():
        got, _ = decoder.rnn(packed)
    torch.testing.assert_close(got.data, expected.data)


def test_inside_the_block_calls_with_a_gradient_or_from_other_threads_are_untouched() -> None:
    decoder = RecurrentDecoder("lstm").eval()
    z = torch.randn(2, D, requires_grad=True)
    results: list[Tensor] = []
    with fused_recurrent_tangents(decoder):
        decoder(z).sum().backward()  # needs PyTorch's own (differentiable) path
        worker = threading.Thread(target=lambda: results.append(decoder(z.detach())))
        with torch.no_grad():
            worker.start()
            worker.join()
    assert z.grad is not None and z.grad.abs().sum() > 0
    torch.testing.assert_close(results[0], decoder(z.detach()))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_context_repeated_at_every_step_gives_the_same_jacobian(cell: str) -> None:
    """The paper's decoders feed `project(z)` expanded over time; the rule projects that
    input's tangent once for all steps, which must not change the result."""

    class ContextDecoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.project = nn.Linear(D, H)
            self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(H, H, 2, batch_first=True)
            self.out = nn.Linear(H, V)

        def forward(self, z: Tensor) -> Tensor:
            context = self.project(z).unsqueeze(1).expand(-1, L, -1)
            return self.out(self.rnn(context)[0])

    torch.manual_seed(4)
    decoder = ContextDecoder().double().eval()
    z = torch.randn(3, D, dtype=torch.float64)
    _, jac = _jacobians(decoder, z, fused=True)
    _, ref_jac = _jacobians(decoder, z, fused=False)
    torch.testing.assert_close(jac, ref_jac, rtol=0, atol=1e-12)
    torch.testing.assert_close(scales(decoder, z), reference_scales(decoder, z), rtol=1e-6, atol=0)


def _meta_product_strides() -> tuple[int, ...]:
    a = torch.empty(3, 5, device="meta").t()  # non-contiguous: PyTorch keeps its layout
    return (a * a).stride()


def test_fast_zero_tangent_shapes_is_exact_and_restores_pytorchs_meta_kernels() -> None:
    before = _meta_product_strides()
    assert before == (1, 5)  # PyTorch's own Meta kernel follows the input's layout
    with pytest.raises(RuntimeError, match="boom"), fast_zero_tangent_shapes():
        assert _meta_product_strides() == (3, 1)  # the fast kernel is in place
        # Inside, only shape and dtype are promised (what zero-tangent kernels read).
        a = torch.empty(3, 1, device="meta", dtype=torch.float32)
        b = torch.empty(1, 4, device="meta", dtype=torch.float64)
        for result in (a + b, a - b, a * b, a / b):
            assert result.shape == (3, 4) and result.dtype == torch.float64
        ints = torch.empty(2, device="meta", dtype=torch.int64)
        assert (ints / ints).dtype == torch.get_default_dtype()
        assert (ints * ints).dtype == torch.int64
        raise RuntimeError("boom")
    assert _meta_product_strides() == before
    # Forward AD through a constant operand gives the same tangent inside and outside.
    x, t, w = torch.randn(2, 3), torch.randn(2, 3), torch.randn(3)
    outside = torch.func.jvp(lambda v: v * w + w, (x,), (t,))
    with fast_zero_tangent_shapes():
        inside = torch.func.jvp(lambda v: v * w + w, (x,), (t,))
    torch.testing.assert_close(inside, outside, rtol=0, atol=0)


def test_fast_zero_tangent_shapes_steps_aside_without_a_way_to_remove_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoDestroy:  # a PyTorch whose Library cannot unregister: never register at all
        def __init__(self, *args: object) -> None:
            raise AssertionError("must not be constructed")

    monkeypatch.setattr(torch.library, "Library", NoDestroy)
    with fast_zero_tangent_shapes():
        assert _meta_product_strides() == (1, 5)  # PyTorch's own Meta kernel
    with fast_zero_tangent_shapes(), fast_zero_tangent_shapes():  # nesting is harmless
        pass


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_fused_rule_on_cuda_matches_the_float64_reference(cell: str) -> None:
    """The fused rule with CUDA's native RNN kernels (cuDNN is off while AD runs)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (bench/gpu_check.sh)")
    torch.manual_seed(5)
    decoder = RecurrentDecoder(cell).double().eval()
    z = torch.randn(4, D, dtype=torch.float64)
    expected = reference_scales(decoder, z)
    got = scales(decoder.cuda(), z.cuda()).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
