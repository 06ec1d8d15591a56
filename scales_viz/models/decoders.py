"""Decoder architectures: `n x d` latents in, logits out.

These are the configurable architectures the built-in models and user manifests name. Each
maps a batch of latents `z` (`n x d`) to logits: `n x L x V` for categorical sequences or
`n x P` for Bernoulli pixels.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

RNNCell = Literal["gru", "lstm"]
_RNN_CLASSES: dict[str, type[nn.GRU] | type[nn.LSTM]] = {"gru": nn.GRU, "lstm": nn.LSTM}

__all__ = [
    "BernoulliMLPDecoder",
    "MLPDecoder",
    "SoftmaxFeedbackRNNDecoder",
    "TransformerLatentDecoder",
]


class SoftmaxFeedbackRNNDecoder(nn.Module):
    """The ScaLES paper's sequence decoder: an RNN on the latent context, softmax feedback.

    `project(z)` is the RNN input at each of the `L` steps; the RNN's output at step `t` is
    concatenated with `output_projection(p_{t-1})` (the previous step's softmax, zeros before
    the first step) and mapped by `out` to the logits of step `t`. Attribute names match the
    authors' released state dicts (`decoder.` prefix stripped).

    Args:
        latent_dim: `d`.
        seq_len: `L`.
        vocab_size: `V`.
        hidden: RNN width (the paper uses 100).
        layers: stacked RNN layers (the paper uses 3).
        cell: "gru" or "lstm".
        dropout: between RNN layers (off in eval mode).
    """

    def __init__(
        self,
        latent_dim: int,
        seq_len: int,
        vocab_size: int,
        *,
        hidden: int = 100,
        layers: int = 3,
        cell: RNNCell = "gru",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.vocab_size = vocab_size
        self.project = nn.Linear(latent_dim, hidden)
        self.gru = _RNN_CLASSES[cell](
            hidden, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.output_projection = nn.Linear(vocab_size, hidden)
        self.out = nn.Linear(2 * hidden, vocab_size)

    def forward(self, z: Tensor) -> Tensor:
        """`z`: `n x d` -> logits `n x L x V`."""
        context = self.project(z).unsqueeze(1).expand(-1, self.seq_len, -1)
        states, _ = self.gru(context)
        probs = z.new_zeros(z.shape[0], self.vocab_size)
        steps = []
        for t in range(self.seq_len):
            logits = self.out(torch.cat([states[:, t], self.output_projection(probs)], dim=-1))
            probs = torch.softmax(logits, dim=-1)
            steps.append(logits)
        return torch.stack(steps, dim=1)


class MLPDecoder(nn.Module):
    """An MLP from `z` to `L x V` logits: Linear-SiLU-Linear-SiLU-Linear."""

    def __init__(self, latent_dim: int, seq_len: int, vocab_size: int, *, hidden: int = 64) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.vocab_size = vocab_size
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, seq_len * vocab_size),
        )

    def forward(self, z: Tensor) -> Tensor:
        """`z`: `n x d` -> logits `n x L x V`."""
        return self.net(z).view(-1, self.seq_len, self.vocab_size)


class BernoulliMLPDecoder(nn.Module):
    """An MLP from `z` to `P` Bernoulli pixel logits (for example 8x8 images, P=64)."""

    def __init__(self, latent_dim: int, pixels: int, *, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, pixels),
        )

    def forward(self, z: Tensor) -> Tensor:
        """`z`: `n x d` -> logits `n x P`."""
        return self.net(z)


class TransformerLatentDecoder(nn.Module):
    """An `nn.TransformerDecoder` that reads `z` as a few memory tokens.

    `z` is mapped to `memory_tokens` vectors of width `width`; learned position queries attend
    to them (causally among themselves) through the decoder stack; a linear head gives logits.
    """

    def __init__(
        self,
        latent_dim: int,
        seq_len: int,
        vocab_size: int,
        *,
        width: int = 32,
        heads: int = 4,
        layers: int = 2,
        memory_tokens: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.memory_tokens = memory_tokens
        self.width = width
        self.memory = nn.Linear(latent_dim, memory_tokens * width)
        self.queries = nn.Parameter(torch.randn(seq_len, width) * 0.5)
        layer = nn.TransformerDecoderLayer(
            width, heads, 2 * width, dropout=dropout, batch_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.head = nn.Linear(width, vocab_size)
        mask = nn.Transformer.generate_square_subsequent_mask(seq_len)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        """`z`: `n x d` -> logits `n x L x V`."""
        memory = self.memory(z).view(-1, self.memory_tokens, self.width)
        queries = self.queries.expand(z.shape[0], -1, -1)
        mask = self.causal_mask.to(queries.dtype)
        return self.head(self.decoder(queries, memory, tgt_mask=mask))
