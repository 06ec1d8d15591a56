"""Small decoders for tests and demos, some with ScaLES known in closed form.

The linear decoders here have scores derived by hand (see each class); the small networks
cover the architectures the engine must handle (MLP, GRU/LSTM with softmax feedback,
transformer, Bernoulli MLP). Weights are random but reproducible from `seed`, without
touching the global random state.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from scales_viz.models.decoders import (
    BernoulliMLPDecoder,
    MLPDecoder,
    SoftmaxFeedbackRNNDecoder,
    SoftmaxInputRNNDecoder,
    TransformerLatentDecoder,
)

__all__ = [
    "DECODER_KINDS",
    "LinearBernoulliDecoder",
    "LinearSoftmaxDecoder",
    "WithoutStructuredJacobian",
    "make_decoder",
    "random_orthogonal",
]


def random_orthogonal(d: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """A `d x d` orthogonal matrix drawn reproducibly from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).to(dtype)


def _softplus_pair(u: Tensor) -> Tensor:
    """`-log s - log(1 - s)` with `s = sigmoid(u)`, elementwise."""
    return nn.functional.softplus(u) + nn.functional.softplus(-u)


class LinearSoftmaxDecoder(nn.Module):
    """`L = d` positions of `V = 2` tokens with logits `[u_t, 0]`, `u = gain * Q z + b`.

    By hand: `A_t = gain * [q_t^T; 0]`, `p_t = (s_t, 1 - s_t)` with `s_t = sigmoid(u_t)`, and
    `1/c_t = 1 - s_t`. The softmax rows of `C_t` are `gain * s_t(1 - s_t) [q_t^T; -q_t^T]`
    and the normaliser row is `-gain * s_t(1 - s_t) q_t^T`, so
    `C^T C = gain^2 Q^T diag(3 s_t^2 (1 - s_t)^2) Q` and (Q orthogonal)

        ScaLES(z) = sum_t [-log s_t - log(1 - s_t)] - d/2 log 3 - d log|gain|.

    With `polarity=True` the Gram matrix is `gain^2 I`: the score is `-d log|gain|`.
    """

    q: Tensor
    b: Tensor

    def __init__(self, latent_dim: int, *, gain: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.gain = gain
        self.register_buffer("q", random_orthogonal(latent_dim, seed))
        gen = torch.Generator().manual_seed(seed + 1)
        self.register_buffer("b", torch.randn(latent_dim, generator=gen, dtype=torch.float64))

    def _u(self, z: Tensor) -> Tensor:
        return self.gain * z @ self.q.to(z.dtype).T + self.b.to(z.dtype)

    def forward(self, z: Tensor) -> Tensor:
        """`z`: `n x d` -> logits `n x d x 2`."""
        u = self._u(z)
        return torch.stack([u, torch.zeros_like(u)], dim=-1)

    def closed_form(self, z: Tensor, *, polarity: bool = False) -> Tensor:
        """The ScaLES score derived above, `n`."""
        d = z.shape[1]
        constant = -d * math.log(abs(self.gain))
        if polarity:
            return torch.full((z.shape[0],), constant, dtype=z.dtype)
        return _softplus_pair(self._u(z)).sum(1) - 0.5 * d * math.log(3.0) + constant


class LinearBernoulliDecoder(LinearSoftmaxDecoder):
    """`P = d` Bernoulli pixel logits `u = gain * Q z + b`.

    By hand: `C = diag(s(1 - s)) gain Q`, so
    `ScaLES(z) = sum_i [-log s_i - log(1 - s_i)] - d log|gain|`.
    """

    def forward(self, z: Tensor) -> Tensor:
        """`z`: `n x d` -> logits `n x d`."""
        return self._u(z)

    def closed_form(self, z: Tensor, *, polarity: bool = False) -> Tensor:
        """The ScaLES score derived above, `n`."""
        d = z.shape[1]
        constant = -d * math.log(abs(self.gain))
        if polarity:
            return torch.full((z.shape[0],), constant, dtype=z.dtype)
        return _softplus_pair(self._u(z)).sum(1) + constant


class WithoutStructuredJacobian(nn.Module):
    """Wraps a decoder so that ScaLES uses generic forward-mode AD on it.

    Decoders such as :class:`~scales_viz.models.SoftmaxFeedbackRNNDecoder` supply their own
    exact Jacobian (`forward_with_jacobian`); this wrapper hides it, for tests that compare the
    two paths and benchmarks that time both.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, z: Tensor) -> Tensor:
        """Same output as the wrapped decoder."""
        out: Tensor = self.inner(z)
        return out


DecoderFactory = Callable[[int, int, int], nn.Module]

_FACTORIES: dict[str, tuple[DecoderFactory, str]] = {
    "mlp": (lambda d, seq, vocab: MLPDecoder(d, seq, vocab, hidden=32), "categorical"),
    "gru": (
        lambda d, seq, vocab: SoftmaxFeedbackRNNDecoder(d, seq, vocab, hidden=16, layers=2),
        "categorical",
    ),
    "lstm": (
        lambda d, seq, vocab: SoftmaxFeedbackRNNDecoder(
            d, seq, vocab, hidden=16, layers=2, cell="lstm"
        ),
        "categorical",
    ),
    "gru-input": (
        lambda d, seq, vocab: SoftmaxInputRNNDecoder(d, seq, vocab, hidden=16, layers=2, embed=8),
        "categorical",
    ),
    "gru-input-hard": (
        lambda d, seq, vocab: SoftmaxInputRNNDecoder(
            d, seq, vocab, hidden=16, layers=2, embed=8, feedback="hard"
        ),
        "categorical",
    ),
    "lstm-input": (
        lambda d, seq, vocab: SoftmaxInputRNNDecoder(
            d, seq, vocab, hidden=16, layers=2, embed=8, cell="lstm"
        ),
        "categorical",
    ),
    "transformer": (
        lambda d, seq, vocab: TransformerLatentDecoder(d, seq, vocab, width=16, heads=2),
        "categorical",
    ),
    "bernoulli-mlp": (
        lambda d, seq, vocab: BernoulliMLPDecoder(d, seq * vocab, hidden=32),
        "bernoulli",
    ),
}
DECODER_KINDS: tuple[str, ...] = tuple(_FACTORIES)


def make_decoder(
    kind: str,
    latent_dim: int = 4,
    seq_len: int = 6,
    vocab_size: int = 5,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    weight_scale: float = 1.0,
) -> tuple[nn.Module, str]:
    """A small random decoder of one of :data:`DECODER_KINDS` and its likelihood kind.

    Bernoulli decoders have `P = seq_len * vocab_size` pixels. `weight_scale` multiplies every
    parameter (larger = more confident softmax). The global random state is left untouched.
    """
    if kind not in _FACTORIES:
        raise ValueError(f"`kind` must be one of {DECODER_KINDS}; got {kind!r}.")
    factory, likelihood = _FACTORIES[kind]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = factory(latent_dim, seq_len, vocab_size)
    with torch.no_grad():
        for param in module.parameters():
            param.mul_(weight_scale)
    return module.to(dtype), likelihood
