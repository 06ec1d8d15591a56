"""Encoder architectures: data in, the Gaussian posterior `(mu, sigma)` out.

Each returns the posterior mean and standard deviation, each `n x d`; the mean is the latent of
a data point.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from scales_viz.models.decoders import conv_sizes

__all__ = ["ConvImageEncoder", "ConvSequenceEncoder", "GRUSequenceEncoder", "MLPEncoder"]

_CONV_BLOCKS = 3


class ConvSequenceEncoder(nn.Module):
    """The ScaLES paper's sequence encoder: three Conv1d-ReLU-BatchNorm blocks, then an MLP.

    Input is one-hot `n x L x V` (read as `V` channels over `L` positions). After the convs it
    flattens, applies `linear` (to `hidden`) and ReLU, and gives `mu = mu(h)` and
    `sigma = softplus(sigma(h))`. Attribute names match the authors' state dicts
    (`encoder.` prefix stripped; their unused `embedding` aside).

    Args:
        seq_len: `L`.
        vocab_size: `V`.
        latent_dim: `d`.
        channels: output channels of the three convs.
        kernels: kernel sizes of the three convs.
        hidden: width of the layer before `mu` and `sigma`.
    """

    def __init__(
        self,
        seq_len: int,
        vocab_size: int,
        latent_dim: int,
        *,
        channels: Sequence[int] = (9, 9, 10),
        kernels: Sequence[int] = (9, 9, 11),
        hidden: int = 100,
    ) -> None:
        super().__init__()
        if len(channels) != _CONV_BLOCKS or len(kernels) != _CONV_BLOCKS:
            raise ValueError(
                f"ConvSequenceEncoder needs {_CONV_BLOCKS} channels and kernels; "
                f"got {list(channels)} and {list(kernels)}."
            )
        width = seq_len - sum(kernels) + _CONV_BLOCKS
        if width < 1:
            raise ValueError(
                f"ConvSequenceEncoder: kernels {list(kernels)} are too long for L={seq_len}."
            )
        previous = vocab_size
        for i, (out, kernel) in enumerate(zip(channels, kernels, strict=True), start=1):
            setattr(self, f"conv{i}", nn.Conv1d(previous, out, kernel))
            setattr(self, f"batch_norm{i}", nn.BatchNorm1d(out))
            previous = out
        self.linear = nn.Linear(previous * width, hidden)
        self.mu = nn.Linear(hidden, latent_dim)
        self.sigma = nn.Linear(hidden, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`x`: one-hot `n x L x V` -> `(mu, sigma)`, each `n x d`."""
        h = x.transpose(1, 2)
        for i in range(1, _CONV_BLOCKS + 1):
            conv: nn.Conv1d = getattr(self, f"conv{i}")
            norm: nn.BatchNorm1d = getattr(self, f"batch_norm{i}")
            h = norm(nn.functional.relu(conv(h)))
        h = nn.functional.relu(self.linear(h.flatten(1)))
        return self.mu(h), nn.functional.softplus(self.sigma(h))


class GRUSequenceEncoder(nn.Module):
    """A bidirectional GRU over the tokens: embedding, GRU, then `mu` and `sigma` heads.

    Input is one-hot `n x L x V`; `embed` (no bias) maps each position to `embed` features, a
    bidirectional GRU of width `hidden` reads the whole padded sequence, and the final states
    of both directions (concatenated, `2 x hidden`) give `mu = mu(h)` and
    `sigma = softplus(sigma(h))`.

    Args:
        seq_len: `L` (kept for the manifest's size checks).
        vocab_size: `V`.
        latent_dim: `d`.
        embed: token embedding width.
        hidden: GRU width per direction.
    """

    def __init__(
        self, seq_len: int, vocab_size: int, latent_dim: int, *, embed: int = 64, hidden: int = 256
    ) -> None:
        super().__init__()
        conv_sizes(
            {
                "seq_len": seq_len,
                "vocab_size": vocab_size,
                "latent_dim": latent_dim,
                "embed": embed,
                "hidden": hidden,
            },
            [1],
        )
        self.embed = nn.Linear(vocab_size, embed, bias=False)
        self.rnn = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.mu = nn.Linear(2 * hidden, latent_dim)
        self.sigma = nn.Linear(2 * hidden, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`x`: one-hot `n x L x V` -> `(mu, sigma)`, each `n x d`."""
        _, last = self.rnn(self.embed(x))
        h = torch.cat([last[0], last[1]], dim=-1)
        return self.mu(h), nn.functional.softplus(self.sigma(h))


class MLPEncoder(nn.Module):
    """MLP encoder for flat data `x` (`n x P`, for example pixels in [0, 1]).

    Two SiLU hidden layers, then `mu` and `sigma = softplus(.)` heads.
    """

    def __init__(self, inputs: int, latent_dim: int, *, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )
        self.mu = nn.Linear(hidden, latent_dim)
        self.sigma = nn.Linear(hidden, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`x`: `n x P` -> `(mu, sigma)`, each `n x d`."""
        h = self.net(x)
        return self.mu(h), nn.functional.softplus(self.sigma(h))


class ConvImageEncoder(nn.Module):
    """A convolutional encoder for images given as flat pixels `x` (`n x P`, `P = H x W`).

    `x` is read row by row as one `H x W` map. Each `conv[i]` (Conv2d, kernel 3, stride 2,
    padding 1, then SiLU) halves the height and width (rounding up) and gives `channels[i]`
    maps; the result is flattened, `linear` (to `hidden`, SiLU) follows, then the `mu` and
    `sigma = softplus(.)` heads.

    Args:
        height: `H`.
        width: `W`.
        latent_dim: `d`.
        channels: feature maps after each stride-2 convolution (one or more).
        hidden: width of the layer before `mu` and `sigma`.
    """

    def __init__(
        self,
        height: int,
        width: int,
        latent_dim: int,
        *,
        channels: Sequence[int] = (8, 16),
        hidden: int = 64,
    ) -> None:
        super().__init__()
        channels = conv_sizes(
            {"height": height, "width": width, "latent_dim": latent_dim, "hidden": hidden},
            channels,
        )
        self.height = height
        self.width = width
        self.conv = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1)
            for c_in, c_out in zip([1, *channels[:-1]], channels, strict=True)
        )
        rows, cols = height, width
        for _ in channels:
            rows, cols = -(-rows // 2), -(-cols // 2)
        self.linear = nn.Linear(channels[-1] * rows * cols, hidden)
        self.mu = nn.Linear(hidden, latent_dim)
        self.sigma = nn.Linear(hidden, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`x`: `n x P` (or `n x H x W`) -> `(mu, sigma)`, each `n x d`."""
        h = x.reshape(x.shape[0], 1, self.height, self.width)
        for conv in self.conv:
            h = nn.functional.silu(conv(h))
        h = nn.functional.silu(self.linear(h.flatten(1)))
        return self.mu(h), nn.functional.softplus(self.sigma(h))
