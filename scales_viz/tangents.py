"""Fused forward-mode rules for recurrent layers, used by ScaLES's generic Jacobian path.

Generic forward-mode AD (``vmap`` over ``jvp``, :func:`scales_viz.score.logits_and_jacobian`)
has no formula for PyTorch's fused ``aten::gru`` / ``aten::lstm`` kernels, so it runs them
through PyTorch's Python decomposition: some twenty batched operations per time step, each
dispatched for the primal and again for the `d` tangents. For the sequence decoders of the
field (a GRU or LSTM over `L` steps) that made the exact Jacobian cost about twice a
finite-difference forward pass.

While ScaLES computes a Jacobian without a gradient, :func:`fused_recurrent_tangents` swaps the
``forward`` of every supported :class:`torch.nn.GRU` / :class:`torch.nn.LSTM` inside the
decoder for one that computes the same function through :class:`_RecurrentPrimal`, an
:class:`torch.autograd.Function` with an exact ``jvp`` rule:

* the primal runs layer by layer through PyTorch's own kernel (one call per layer), and the
  gate activations every step needs are recomputed for all steps at once from the states;
* the tangents of all `d` latent directions travel as one contiguous `L x (d*n) x H` block
  (time first, so each step reads contiguous memory), through a custom ``vmap`` rule
  (:class:`_RecurrentTangent`) that receives them as one plain tensor instead of `d` batched
  ones, with the per-step coefficients precomputed: one matrix product and six fused
  element-wise operations per step.

The rule is exact (the same derivative, in the decoder's dtype; the float64 reference tests
hold it to 1e-6). Supported: unidirectional, single- or multi-layer GRU and LSTM, with or
without biases, ``batch_first`` either way, 3-D input, optional initial state, no ``proj_size``.
Anything else (bidirectional, packed sequences, projections, unbatched input, a gradient
through the Jacobian) keeps PyTorch's own path, which is slower but equally exact.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, TypeGuard

import torch
from torch import Tensor, nn

__all__ = ["fast_zero_tangent_shapes", "fused_recurrent_tangents", "supports_fused_tangents"]

# Element-wise ops whose zero-tangent kernels ask the Meta kernel for the result's shape.
_ZERO_TANGENT_OPS = ("add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor")
_SHAPES_LOCK = threading.Lock()

# (weight_ih, weight_hh, bias_ih or None, bias_hh or None) for each layer.
LayerWeights = tuple[Tensor, Tensor, Tensor | None, Tensor | None]


def supports_fused_tangents(module: nn.Module) -> TypeGuard[nn.RNNBase]:
    """Whether :func:`fused_recurrent_tangents` can take over this module's tangents."""
    return (
        type(module) in (nn.GRU, nn.LSTM)
        and not getattr(module, "bidirectional", True)
        and not getattr(module, "proj_size", 0)
    )


@contextlib.contextmanager
def fused_recurrent_tangents(decoder: object) -> Iterator[None]:
    """Within the block, supported recurrent layers of `decoder` use the fused tangent rule.

    Their output is unchanged; only how forward-mode AD differentiates them changes. Meant for
    Jacobians computed without a gradient (the rule has no backward); the caller holds the
    decoder lock, and every swapped ``forward`` is restored on exit.
    """
    if not isinstance(decoder, nn.Module):
        yield
        return
    swapped = [m for m in decoder.modules() if supports_fused_tangents(m)]
    owner = threading.get_ident()
    for module in swapped:
        module.forward = _fused_forward(module, owner)
    try:
        yield
    finally:
        for module in swapped:
            del module.forward


def _broadcast_meta(a: Tensor, b: Tensor, *args: object, **kwargs: object) -> Tensor:
    """Shape and dtype of an element-wise binary op, as an empty meta tensor (contiguous)."""
    shape = torch.broadcast_shapes(a.shape, b.shape)
    return torch.empty(shape, dtype=torch.result_type(a, b), device="meta")


def _true_division_meta(a: Tensor, b: Tensor, *args: object, **kwargs: object) -> Tensor:
    """As :func:`_broadcast_meta`, with integers divided into the default float dtype."""
    out = _broadcast_meta(a, b)
    return out if out.is_floating_point() or out.is_complex() else out.to(torch.get_default_dtype())


@contextlib.contextmanager
def fast_zero_tangent_shapes() -> Iterator[None]:
    """Within the block, zero tangents of element-wise ops cost microseconds, not a Python
    reference implementation.

    Forward-mode AD represents the missing tangent of a constant operand (a bias, a weight, a
    constant factor) as an "efficient zero" tensor, and PyTorch's zero-tensor kernels for
    ``add``, ``sub``, ``mul`` and ``div`` find the result's shape by re-running the op on the
    Meta device. Since ``import torch`` registers Python reference implementations for Meta,
    each such step costs 100-200 microseconds of Python: in a decoder's step loop this was a
    third of the generic Jacobian's time. The block registers, for those four ops only, a Meta
    kernel that computes just the broadcast shape and the promoted dtype (all the zero-tensor
    kernels read), and removes it on exit, which restores PyTorch's own. The registration is
    process-wide while it lasts (Meta results of those ops in other threads are then
    contiguous); it is skipped if this PyTorch lacks the registration API or a way to
    remove a registration (``Library._destroy``), and while another thread holds it.
    """
    library_class = getattr(torch.library, "Library", None)
    if (
        library_class is None
        or not hasattr(library_class, "_destroy")
        or not _SHAPES_LOCK.acquire(blocking=False)
    ):
        yield  # unavailable, or another thread holds it (re-entry): nothing to add
        return
    lib = None
    try:
        try:
            lib = library_class("aten", "IMPL", "Meta")
            for op in _ZERO_TANGENT_OPS:
                kernel = _true_division_meta if op.startswith("div") else _broadcast_meta
                lib.impl(op, kernel)
        except Exception:  # an optimisation only: fall back to PyTorch's
            if lib is not None:
                lib._destroy()
            lib = None
        yield
    finally:
        if lib is not None:
            lib._destroy()
        _SHAPES_LOCK.release()


def _layer_weights(module: nn.RNNBase) -> list[LayerWeights]:
    bias = bool(module.bias)
    layers: list[LayerWeights] = []
    for k in range(module.num_layers):
        layers.append(
            (
                getattr(module, f"weight_ih_l{k}"),
                getattr(module, f"weight_hh_l{k}"),
                getattr(module, f"bias_ih_l{k}") if bias else None,
                getattr(module, f"bias_hh_l{k}") if bias else None,
            )
        )
    return layers


def _fused_forward(module: nn.RNNBase, owner: int) -> Any:
    original = type(module).forward
    lstm = isinstance(module, nn.LSTM)
    batch_first = bool(module.batch_first)

    def forward(input: Tensor, hx: Any = None) -> Any:
        if (
            not isinstance(input, Tensor)
            or input.ndim != 3  # packed or unbatched
            or torch.is_grad_enabled()  # the rule has no backward
            or threading.get_ident() != owner  # another thread's call: not ours to change
        ):
            return original(module, input, hx)
        x = input if batch_first else input.transpose(0, 1)  # n x L x I
        n = x.shape[0]
        layers, hidden = module.num_layers, module.hidden_size
        if hx is None:
            h0 = x.new_zeros(layers, n, hidden)
            c0 = x.new_zeros(layers, n, hidden) if lstm else None
        elif lstm:
            h0, c0 = hx
        else:
            h0, c0 = hx, None
        weights = _layer_weights(module)
        flat = [w for layer in weights for w in layer if w is not None]
        out, h_n, c_n, _ = _RecurrentPrimal.apply(x, h0, c0, lstm, 4 if module.bias else 2, *flat)
        out = out if batch_first else out.transpose(0, 1)
        return (out, (h_n, c_n)) if lstm else (out, h_n)

    return forward


def _unflatten(flat: tuple[Tensor, ...], layers: int, has_bias: bool) -> list[LayerWeights]:
    per = 4 if has_bias else 2
    out: list[LayerWeights] = []
    for k in range(layers):
        w = flat[k * per : (k + 1) * per]
        out.append((w[0], w[1], w[2], w[3]) if has_bias else (w[0], w[1], None, None))
    return out


class _Saved:
    """Per-layer primal quantities the tangent steps need (all `L x n x ...`, time first)."""

    def __init__(self) -> None:
        self.coefficients: list[tuple[Tensor, ...]] = []
        self.weights: list[LayerWeights] = []


def _gru_layer(x: Tensor, h0: Tensor, w: LayerWeights) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One GRU layer: states `n x L x H` (PyTorch's kernel) and the tangent coefficients."""
    w_ih, w_hh, b_ih, b_hh = w
    params = [p for p in w if p is not None]
    out, _ = torch.gru(x, h0[None], params, b_ih is not None, 1, 0.0, False, False, True)
    hidden = w_hh.shape[1]
    prev = torch.cat([h0[:, None], out[:, :-1]], dim=1)  # h_{t-1}
    gi = nn.functional.linear(x, w_ih, b_ih)
    gh = nn.functional.linear(prev, w_hh, b_hh)
    rz = torch.sigmoid(gi[..., : 2 * hidden] + gh[..., : 2 * hidden])
    r, u = rz[..., :hidden], rz[..., hidden:]
    gh_n = gh[..., 2 * hidden :]
    cand = torch.tanh(gi[..., 2 * hidden :] + r * gh_n)
    # d h_t = dcand (1 - u) + du (h_{t-1} - cand) + u dh_{t-1}, dcand = (1 - cand^2) dpre.
    coefficients = (
        rz * (1 - rz),  # slope of the r and u gates
        r,
        gh_n,
        (1 - cand * cand) * (1 - u),
        prev - cand,
        u,
    )
    return out, tuple(c.transpose(0, 1).contiguous() for c in coefficients)


def _lstm_layer(
    x: Tensor, h0: Tensor, c0: Tensor, w: LayerWeights
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """One LSTM layer: states `n x L x H`, the last cell state and the tangent coefficients."""
    w_ih, w_hh, b_ih, b_hh = w
    params = [p for p in w if p is not None]
    out, _, c_n = torch.lstm(
        x, (h0[None], c0[None]), params, b_ih is not None, 1, 0.0, False, False, True
    )
    hidden = w_hh.shape[1]
    prev = torch.cat([h0[:, None], out[:, :-1]], dim=1)
    pre = nn.functional.linear(x, w_ih, b_ih) + nn.functional.linear(prev, w_hh, b_hh)
    sig = torch.sigmoid(pre)
    i, f, o = sig[..., :hidden], sig[..., hidden : 2 * hidden], sig[..., 3 * hidden :]
    g = torch.tanh(pre[..., 2 * hidden : 3 * hidden])
    # c_t = f c_{t-1} + i g, recomputed for every step from the gates.
    c_steps = []
    c = c0
    for t in range(x.shape[1]):
        c = torch.addcmul(f[:, t] * c, i[:, t], g[:, t])
        c_steps.append(c)
    cells = torch.stack(c_steps, dim=1)
    c_prev = torch.cat([c0[:, None], cells[:, :-1]], dim=1)
    tc = torch.tanh(cells)
    slope = torch.cat([sig[..., : 2 * hidden] * (1 - sig[..., : 2 * hidden]), 1 - g * g], -1)
    slope = torch.cat([slope, o * (1 - o)], dim=-1)
    # dc_t = f dc_{t-1} + df c_{t-1} + di g + i dg; dh_t = do tanh(c_t) + o (1 - tanh^2) dc_t.
    coefficients = (slope, f, c_prev, g, i, tc, o * (1 - tc * tc))
    return out, c_n[0], tuple(c.transpose(0, 1).contiguous() for c in coefficients)


class _RecurrentPrimal(torch.autograd.Function):
    """A GRU/LSTM stack whose forward-mode derivative is the fused rule."""

    generate_vmap_rule = True

    @staticmethod
    def forward(
        x: Tensor,
        h0: Tensor,
        c0: Tensor | None,
        lstm: bool,
        per_layer: int,
        *flat: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor | None, _Saved]:
        weights = _unflatten(flat, len(flat) // per_layer, per_layer == 4)
        saved = _Saved()
        h_last, c_last = [], []
        for k, w in enumerate(weights):
            if lstm:
                assert c0 is not None
                x, c_n, coefficients = _lstm_layer(x, h0[k], c0[k], w)
                c_last.append(c_n)
            else:
                x, coefficients = _gru_layer(x, h0[k], w)
            h_last.append(x[:, -1])
            saved.coefficients.append(coefficients)
            saved.weights.append(w)
        c_n_all = torch.stack(c_last) if lstm else None
        return x, torch.stack(h_last), c_n_all, saved

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.saved = output[3]
        ctx.lstm = inputs[3]

    @staticmethod
    def jvp(ctx: Any, dx: Tensor | None, dh0: Tensor | None, dc0: Tensor | None, *_: Any) -> Any:
        # The weights' tangents arrive as zeros: parameters never depend on the latent.
        return (*_RecurrentTangent.apply(dx, dh0, dc0, ctx.saved, ctx.lstm), None)


class _RecurrentTangent(torch.autograd.Function):
    """The tangent map of a recurrent stack at a fixed primal point (linear in the tangents).

    Its ``vmap`` rule receives the `d` directions as one tensor and runs them as one batch.
    """

    @staticmethod
    def forward(
        dx: Tensor | None, dh0: Tensor | None, dc0: Tensor | None, saved: _Saved, lstm: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        unsq = [t if t is None else t[None] for t in (dx, dh0, dc0)]
        with torch.no_grad():
            out, h_n, c_n = _tangents(unsq[0], unsq[1], unsq[2], saved, lstm, 1)
        return out[0], h_n[0], (c_n[0] if c_n is not None else None)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        pass

    @staticmethod
    def vmap(
        info: Any,
        in_dims: tuple[int | None, ...],
        dx: Tensor | None,
        dh0: Tensor | None,
        dc0: Tensor | None,
        saved: _Saved,
        lstm: bool,
    ) -> Any:
        size = info.batch_size
        moved: list[Tensor | None] = []
        for tangent, dim in zip((dx, dh0, dc0), in_dims[:3], strict=True):
            if tangent is None:
                moved.append(None)
            elif dim is None:
                moved.append(tangent.expand(size, *tangent.shape))
            else:
                moved.append(tangent.movedim(dim, 0))
        with torch.no_grad():  # the rule is only used without a gradient (it has no backward)
            out, h_n, c_n = _tangents(moved[0], moved[1], moved[2], saved, lstm, size)
        return (out, h_n, c_n), (0, 0, 0 if c_n is not None else None)


def _tangents(
    dx: Tensor | None,
    dh0: Tensor | None,
    dc0: Tensor | None,
    saved: _Saved,
    lstm: bool,
    directions: int,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Propagate `D` tangent directions (`D x n x L x I` input, `D x layers x n x H` states)."""
    first = saved.coefficients[0][0]
    steps, n = first.shape[:2]
    dtype, device = first.dtype, first.device
    hidden = saved.weights[0][1].shape[1]
    h_last, c_last = [], []
    # Time-first tangents, L x D x n x I, so that each step's slice is contiguous.
    seq: Tensor | None = None if dx is None else dx.permute(2, 0, 1, 3)
    for k, (w, coefficients) in enumerate(zip(saved.weights, saved.coefficients, strict=True)):
        w_ih, w_hh = w[0], w[1]
        gates = w_hh.shape[0]
        if seq is None:
            dgi = torch.zeros(1, directions, n, gates, dtype=dtype, device=device)
            dgi = dgi.expand(steps, -1, -1, -1)
        elif seq.stride(0) == 0:  # the same input at every step (a context repeated by expand)
            dgi = (seq[:1] @ w_ih.T).expand(steps, -1, -1, -1)
        else:
            dgi = seq @ w_ih.T
        dh = (
            dh0[:, k].to(dtype)
            if dh0 is not None
            else torch.zeros(directions, n, hidden, dtype=dtype, device=device)
        )
        if lstm:
            dc = (
                dc0[:, k].to(dtype)
                if dc0 is not None
                else torch.zeros(directions, n, hidden, dtype=dtype, device=device)
            )
            seq, dh, dc = _lstm_tangent_steps(dgi, dh, dc, w_hh, coefficients)
            c_last.append(dc)
        else:
            seq, dh = _gru_tangent_steps(dgi, dh, w_hh, coefficients)
        h_last.append(dh)
    assert seq is not None
    out = seq.permute(1, 2, 0, 3)  # D x n x L x H
    c_n = torch.stack(c_last, dim=1) if lstm else None
    return out, torch.stack(h_last, dim=1), c_n


def _gru_tangent_steps(
    dgi: Tensor, dh: Tensor, w_hh: Tensor, coefficients: tuple[Tensor, ...]
) -> tuple[Tensor, Tensor]:
    """GRU tangents over time: `dgi` `L x D x n x 3H`, `dh` `D x n x H` -> `L x D x n x H`.

    Per step: one matrix product for all gates, then in-place fused updates, written straight
    into the output block.
    """
    slope_rz, r, gh_n, cand_out, h_minus_cand, u = coefficients
    hidden = w_hh.shape[1]
    w_t = w_hh.T
    steps = dgi.shape[0]
    out = dh.new_empty(steps, *dh.shape)
    for t in range(steps):
        dgi_t = dgi[t]
        dgh = torch.mm(dh.reshape(-1, hidden), w_t).view(*dh.shape[:2], 3 * hidden)
        drz = dgh[..., : 2 * hidden].add_(dgi_t[..., : 2 * hidden]).mul_(slope_rz[t])
        dpre = torch.addcmul(dgi_t[..., 2 * hidden :], r[t], dgh[..., 2 * hidden :])
        dpre.addcmul_(drz[..., :hidden], gh_n[t])
        new = torch.mul(dpre, cand_out[t], out=out[t])
        dh = new.addcmul_(drz[..., hidden:], h_minus_cand[t]).addcmul_(u[t], dh)
    return out, dh


def _lstm_tangent_steps(
    dgi: Tensor, dh: Tensor, dc: Tensor, w_hh: Tensor, coefficients: tuple[Tensor, ...]
) -> tuple[Tensor, Tensor, Tensor]:
    """LSTM tangents over time: `dgi` `L x D x n x 4H` -> `L x D x n x H`, last `dh` and `dc`."""
    slope, f, c_prev, g, i, tc, o_slope = coefficients
    hidden = w_hh.shape[1]
    w_t = w_hh.T
    steps = dgi.shape[0]
    out = dh.new_empty(steps, *dh.shape)
    for t in range(steps):
        dact = torch.addmm(dgi[t].reshape(-1, 4 * hidden), dh.reshape(-1, hidden), w_t)
        dact = dact.view(*dh.shape[:2], 4 * hidden).mul_(slope[t])
        di, df = dact[..., :hidden], dact[..., hidden : 2 * hidden]
        dg, do = dact[..., 2 * hidden : 3 * hidden], dact[..., 3 * hidden :]
        dc = torch.mul(df, c_prev[t]).addcmul_(f[t], dc).addcmul_(di, g[t]).addcmul_(i[t], dg)
        dh = torch.mul(do, tc[t], out=out[t]).addcmul_(o_slope[t], dc)
    return out, dh, dc
