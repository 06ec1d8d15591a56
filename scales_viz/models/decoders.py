"""Decoder architectures: `n x d` latents in, logits out.

These are the configurable architectures the built-in models and user manifests name. Each
maps a batch of latents `z` (`n x d`) to logits: `n x L x V` for categorical sequences or
`n x P` for Bernoulli pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import torch
from torch import Tensor, nn

RNNCell = Literal["gru", "lstm"]
_RNN_CLASSES: dict[str, type[nn.GRU] | type[nn.LSTM]] = {"gru": nn.GRU, "lstm": nn.LSTM}

__all__ = [
    "BernoulliConvDecoder",
    "BernoulliMLPDecoder",
    "MLPDecoder",
    "SoftmaxFeedbackRNNDecoder",
    "SoftmaxInputRNNDecoder",
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

    def forward_with_jacobian(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Logits and their exact Jacobian in `z`, by hand-written forward-mode propagation.

        The same function as :meth:`forward` (eval mode: no dropout), differentiated exactly.
        Tangents for the `d` latent directions travel beside the primal values as one
        `d x n` batch, and the layer-0 input tangent (the context's Jacobian, the same at
        every step and for every point) is propagated once. This runs within about the cost
        of one forward pass over `n(d+1)` points, where generic forward-mode AD costs about
        twice that (bench/RESULTS.md).

        Args:
            z: an `n x d` tensor.

        Returns:
            `(logits, jacobian)`: `n x L x V` and `d x n x L x V`.
        """
        n, d = z.shape
        rnn = self.gru
        states = self.project(z)  # n x H, the input at every step
        # d x 1 x H: the same for every point.
        tangents = self.project.weight.T.unsqueeze(1)
        constant_input = True
        for layer in range(rnn.num_layers):
            w_ih = getattr(rnn, f"weight_ih_l{layer}")
            w_hh = getattr(rnn, f"weight_hh_l{layer}")
            b_ih = getattr(rnn, f"bias_ih_l{layer}")
            b_hh = getattr(rnn, f"bias_hh_l{layer}")
            gi = states @ w_ih.T + b_ih
            dgi = tangents @ w_ih.T
            cell = _gru_steps if isinstance(rnn, nn.GRU) else _lstm_steps
            states, tangents = cell(gi, dgi, w_hh, b_hh, self.seq_len, constant_input, n, d)
            constant_input = False
        return self._feedback_with_jacobian(states, tangents)

    def _feedback_with_jacobian(self, states: Tensor, tangents: Tensor) -> tuple[Tensor, Tensor]:
        """The softmax-feedback output loop on states `n x L x H` and tangents `d x n x L x H`."""
        hidden = states.shape[-1]
        w_state, w_feedback = self.out.weight[:, :hidden], self.out.weight[:, hidden:]
        # out(output_projection(p)) restricted to the feedback half, as one V x V map.
        feedback = self.output_projection.weight.T @ w_feedback.T
        offset = self.out.bias + self.output_projection.bias @ w_feedback.T
        base = states @ w_state.T + offset
        dbase = tangents @ w_state.T
        probs = base.new_zeros(base.shape[0], self.vocab_size)
        dprobs = dbase.new_zeros(dbase.shape[0], base.shape[0], self.vocab_size)
        logits, dlogits = [], []
        for t in range(self.seq_len):
            l_t = base[:, t] + probs @ feedback
            dl_t = dbase[:, :, t] + dprobs @ feedback
            probs = torch.softmax(l_t, dim=-1)
            dprobs = probs * (dl_t - (dl_t * probs).sum(dim=-1, keepdim=True))
            logits.append(l_t)
            dlogits.append(dl_t)
        return torch.stack(logits, dim=1), torch.stack(dlogits, dim=2)


def _gru_steps(
    gi: Tensor,
    dgi: Tensor,
    w_hh: Tensor,
    b_hh: Tensor,
    seq_len: int,
    constant_input: bool,
    n: int,
    d: int,
) -> tuple[Tensor, Tensor]:
    """One GRU layer over `seq_len` steps with tangents (PyTorch's gate order r, z, n).

    `gi`/`dgi` are the input projections: `n x 3H` and `d x 1 x 3H` when the input is the same
    at every step, else `n x L x 3H` and `d x n x L x 3H`. Returns the states `n x L x H` and
    their tangents `d x n x L x H`.
    """
    hidden = w_hh.shape[1]
    h = gi.new_zeros(n, hidden)
    dh = gi.new_zeros(d, n, hidden)
    outputs, doutputs = [], []
    for t in range(seq_len):
        gi_t, dgi_t = (gi, dgi) if constant_input else (gi[:, t], dgi[:, :, t])
        h, dh = _gru_cell(gi_t, dgi_t, h, dh, w_hh, b_hh)
        outputs.append(h)
        doutputs.append(dh)
    return torch.stack(outputs, dim=1), torch.stack(doutputs, dim=2)


def _gru_cell(
    gi: Tensor, dgi: Tensor, h: Tensor, dh: Tensor, w_hh: Tensor, b_hh: Tensor
) -> tuple[Tensor, Tensor]:
    """One GRU step with tangents: input gates `gi` (`n x 3H`) and `dgi` (`d x n x 3H`, or
    broadcastable), state `h` (`n x H`) and `dh` (`d x n x H`) -> the new state and tangent."""
    hidden = w_hh.shape[1]
    gh_p, dgh = torch.addmm(b_hh, h, w_hh.T), dh @ w_hh.T
    rz = torch.sigmoid(gi[:, : 2 * hidden] + gh_p[:, : 2 * hidden])
    r, zg = rz[:, :hidden], rz[:, hidden:]
    gh_n = gh_p[:, 2 * hidden :]
    cand = torch.tanh(gi[:, 2 * hidden :] + r * gh_n)
    h_new = cand + zg * (h - cand)
    drz = (dgi[..., : 2 * hidden] + dgh[..., : 2 * hidden]) * (rz * (1 - rz))
    dr, dzg = drz[..., :hidden], drz[..., hidden:]
    dpre = torch.addcmul(dgi[..., 2 * hidden :] + r * dgh[..., 2 * hidden :], dr, gh_n)
    dcand = dpre * (1 - cand * cand)
    dh_new = torch.addcmul(torch.addcmul(dcand, dzg, h - cand), zg, dh - dcand)
    return h_new, dh_new


def _lstm_steps(
    gi: Tensor,
    dgi: Tensor,
    w_hh: Tensor,
    b_hh: Tensor,
    seq_len: int,
    constant_input: bool,
    n: int,
    d: int,
) -> tuple[Tensor, Tensor]:
    """One LSTM layer over `seq_len` steps with tangents (gate order i, f, g, o).

    Shapes as for :func:`_gru_steps` with `4H` gate columns.
    """
    hidden = w_hh.shape[1]
    h = gi.new_zeros(n, hidden)
    c = gi.new_zeros(n, hidden)
    dh = gi.new_zeros(d, n, hidden)
    dc = gi.new_zeros(d, n, hidden)
    outputs, doutputs = [], []
    for t in range(seq_len):
        gi_t, dgi_t = (gi, dgi) if constant_input else (gi[:, t], dgi[:, :, t])
        h, c, dh, dc = _lstm_cell(gi_t, dgi_t, h, c, dh, dc, w_hh, b_hh)
        outputs.append(h)
        doutputs.append(dh)
    return torch.stack(outputs, dim=1), torch.stack(doutputs, dim=2)


def _lstm_cell(
    gi: Tensor,
    dgi: Tensor,
    h: Tensor,
    c: Tensor,
    dh: Tensor,
    dc: Tensor,
    w_hh: Tensor,
    b_hh: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One LSTM step with tangents (gate order i, f, g, o); shapes as for :func:`_gru_cell`
    with `4H` gate columns and a cell state `c`, `dc` beside `h`, `dh`."""
    hidden = w_hh.shape[1]
    pre = gi + torch.addmm(b_hh, h, w_hh.T)
    dpre = dgi + dh @ w_hh.T
    sig = torch.sigmoid(pre)
    i, f, o = sig[:, :hidden], sig[:, hidden : 2 * hidden], sig[:, 3 * hidden :]
    g = torch.tanh(pre[:, 2 * hidden : 3 * hidden])
    slope = torch.cat([(sig * (1 - sig))[:, : 2 * hidden], 1 - g * g], dim=1)
    slope = torch.cat([slope, (o * (1 - o))], dim=1)
    dact = dpre * slope
    di, df = dact[..., :hidden], dact[..., hidden : 2 * hidden]
    dg, do = dact[..., 2 * hidden : 3 * hidden], dact[..., 3 * hidden :]
    dc = torch.addcmul(torch.addcmul(torch.addcmul(df * c, f, dc), di, g), i, dg)
    c = f * c + i * g
    tc = torch.tanh(c)
    h = o * tc
    dh = torch.addcmul(do * tc, o * (1 - tc * tc), dc)
    return h, c, dh, dc


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


class SoftmaxInputRNNDecoder(nn.Module):
    """An RNN decoder that reads the latent and its own previous softmax at every step.

    Step `t` feeds `[project(z), embed(p_{t-1})]` to the RNN (`p_0 = 0`) and maps the top
    layer's output through `out` to the logits of step `t`; `p_t = softmax(logits_t)`. Unlike
    :class:`SoftmaxFeedbackRNNDecoder`, the RNN state sees what was emitted, so it can track
    syntax (ring closures and brackets in SMILES). Training can use the true previous tokens
    (:meth:`forward_teacher`). Decoding feeds back either the softmax (``feedback="soft"``:
    `z -> logits` is smooth everywhere) or the one-hot argmax (``feedback="hard"``: greedy
    decoding, what a teacher-forced model was trained for; `z -> logits` is then smooth
    except where an argmax switches, and the Jacobian flows through the latent context only,
    so ScaLES is defined almost everywhere).

    Args:
        latent_dim: `d`.
        seq_len: `L`.
        vocab_size: `V`.
        hidden: RNN width.
        layers: stacked RNN layers.
        embed: width of the feedback embedding.
        cell: "gru" or "lstm".
        dropout: between RNN layers (off in eval mode).
        feedback: "soft" (the softmax) or "hard" (the one-hot argmax) when decoding.
    """

    def __init__(
        self,
        latent_dim: int,
        seq_len: int,
        vocab_size: int,
        *,
        hidden: int = 256,
        layers: int = 3,
        embed: int = 64,
        cell: RNNCell = "gru",
        dropout: float = 0.2,
        feedback: str = "soft",
    ) -> None:
        super().__init__()
        if feedback not in ("soft", "hard"):
            raise ValueError(f"`feedback` must be 'soft' or 'hard'; got {feedback!r}.")
        self.feedback = feedback
        self.seq_len = seq_len
        self.vocab_size = vocab_size
        self.project = nn.Linear(latent_dim, hidden)
        self.embed = nn.Linear(vocab_size, embed, bias=False)
        self.rnn = _RNN_CLASSES[cell](
            hidden + embed,
            hidden,
            layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, z: Tensor) -> Tensor:
        """`z`: `n x d` -> logits `n x L x V`, feeding back each step's softmax."""
        context = self.project(z).unsqueeze(1)
        probs = z.new_zeros(z.shape[0], 1, self.vocab_size)
        state = None
        steps = []
        for _ in range(self.seq_len):
            output, state = self.rnn(torch.cat([context, self.embed(probs)], dim=-1), state)
            logits = self.out(output)
            if self.feedback == "hard":
                # A comparison carries no tangent: the feedback is constant in z locally.
                probs = (logits == logits.amax(dim=-1, keepdim=True)).to(logits.dtype)
            else:
                probs = torch.softmax(logits, dim=-1)
            steps.append(logits)
        return torch.cat(steps, dim=1)

    def forward_with_jacobian(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Logits and their exact Jacobian in `z`, by hand-written forward-mode propagation.

        The same function as :meth:`forward` (eval mode), differentiated exactly: with soft
        feedback the tangent flows through the latent context and through every fed-back
        softmax; with hard feedback the fed-back one-hot is locally constant, so only the
        context carries it (the Jacobian the generic forward-mode AD gives, at a point where
        no argmax ties). The `d` tangents travel as one `d x n` batch; the context's
        contribution to the first layer's gates is the same for every point and step, and the
        feedback's embedding and gate projection are folded into one `V x G` matrix.

        Args:
            z: an `n x d` tensor.

        Returns:
            `(logits, jacobian)`: `n x L x V` and `d x n x L x V`.
        """
        n, d = z.shape
        rnn = self.rnn
        hidden = rnn.hidden_size
        lstm = isinstance(rnn, nn.LSTM)
        soft = self.feedback == "soft"
        w_ih0 = getattr(rnn, "weight_ih_l0")  # noqa: B009 (nn.GRU types it Tensor | Module)
        b_ih0 = getattr(rnn, "bias_ih_l0")  # noqa: B009
        w_context, w_feedback = w_ih0[:, :hidden], w_ih0[:, hidden:]
        # Gates of layer 0 from the context (n x G) and their tangent (d x 1 x G).
        context_gates = self.project(z) @ w_context.T + b_ih0
        dcontext_gates = (self.project.weight.T @ w_context.T).unsqueeze(1)
        feedback = self.embed.weight.T @ w_feedback.T  # V x G
        layers = [
            (
                getattr(rnn, f"weight_ih_l{k}"),
                getattr(rnn, f"weight_hh_l{k}"),
                getattr(rnn, f"bias_ih_l{k}"),
                getattr(rnn, f"bias_hh_l{k}"),
            )
            for k in range(rnn.num_layers)
        ]
        h = [z.new_zeros(n, hidden) for _ in layers]
        dh = [z.new_zeros(d, n, hidden) for _ in layers]
        c = [z.new_zeros(n, hidden) for _ in layers]
        dc = [z.new_zeros(d, n, hidden) for _ in layers]
        probs = z.new_zeros(n, self.vocab_size)
        dprobs: Tensor | None = None
        w_out, b_out = self.out.weight, self.out.bias
        logits, dlogits = [], []
        for _ in range(self.seq_len):
            gi = context_gates + probs @ feedback
            dgi = dcontext_gates if dprobs is None else dcontext_gates + dprobs @ feedback
            for k, (w_ih, w_hh, _b_ih, b_hh) in enumerate(layers):
                if k > 0:
                    gi = torch.addmm(_b_ih, h[k - 1], w_ih.T)
                    dgi = dh[k - 1] @ w_ih.T
                if lstm:
                    h[k], c[k], dh[k], dc[k] = _lstm_cell(
                        gi, dgi, h[k], c[k], dh[k], dc[k], w_hh, b_hh
                    )
                else:
                    h[k], dh[k] = _gru_cell(gi, dgi, h[k], dh[k], w_hh, b_hh)
            l_t = torch.addmm(b_out, h[-1], w_out.T)
            dl_t = dh[-1] @ w_out.T
            if soft:
                probs = torch.softmax(l_t, dim=-1)
                dprobs = probs * (dl_t - (dl_t * probs).sum(dim=-1, keepdim=True))
            else:
                probs = (l_t == l_t.amax(dim=-1, keepdim=True)).to(l_t.dtype)
            logits.append(l_t)
            dlogits.append(dl_t)
        return torch.stack(logits, dim=1), torch.stack(dlogits, dim=2)

    def forward_teacher(self, z: Tensor, tokens: Tensor, word_dropout: float = 0.0) -> Tensor:
        """Logits `n x L x V` with the true previous tokens (`n x L` indices) fed back.

        `word_dropout`: the share of fed-back tokens replaced by the empty (all-zero) input,
        which makes the decoder lean on the latent (Bowman et al., 2016).
        """
        previous = nn.functional.one_hot(tokens[:, :-1].long(), self.vocab_size).to(z.dtype)
        if word_dropout > 0:
            keep = torch.rand(previous.shape[:2], device=z.device) >= word_dropout
            previous = previous * keep.unsqueeze(-1).to(z.dtype)
        previous = torch.cat([previous.new_zeros(z.shape[0], 1, self.vocab_size), previous], 1)
        context = self.project(z).unsqueeze(1).expand(-1, self.seq_len, -1)
        output, _ = self.rnn(torch.cat([context, self.embed(previous)], dim=-1))
        return self.out(output)


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


def conv_sizes(sizes: dict[str, int], channels: Sequence[int]) -> list[int]:
    """Check a conv module's sizes (positive integers) and `channels` (one or more positive
    integers); return the channels as a list.

    Raises:
        ValueError: a size or channel count that is not a positive integer (bools refused).
    """
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{key}` must be a positive integer; got {value!r}.")
    out = list(channels)
    if not out or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in out):
        raise ValueError(f"`channels` must be positive integers (one or more); got {out}.")
    return out


class BernoulliConvDecoder(nn.Module):
    """A transposed-convolution decoder from `z` to `P = H x W` Bernoulli pixel logits.

    `project(z)` (Linear, SiLU) is reshaped to `channels[0]` feature maps on a coarse grid of
    `ceil(H / 2^k) x ceil(W / 2^k)` cells, `k = len(channels) - 1`. Each of the `k` steps
    `up[i]` (ConvTranspose2d, kernel 4, stride 2, padding 1, then SiLU) doubles the height and
    width and goes from `channels[i]` to `channels[i + 1]` maps; `head` (Conv2d to one map,
    kernel 3, padding 1) gives a logit per cell. The top-left `H x W` cells are kept and
    flattened row by row, so the output has the layout of :class:`BernoulliMLPDecoder`:
    logits `n x P` with pixel `(i, j)` at `i * W + j`, and `sigmoid(logits)` the pixel means.

    Args:
        latent_dim: `d`.
        height: `H`.
        width: `W`.
        channels: feature maps per resolution, coarsest first (at least one entry).
    """

    def __init__(
        self, latent_dim: int, height: int, width: int, *, channels: Sequence[int] = (32, 16, 8)
    ) -> None:
        super().__init__()
        channels = conv_sizes(
            {"latent_dim": latent_dim, "height": height, "width": width}, channels
        )
        factor = 2 ** (len(channels) - 1)
        self.height = height
        self.width = width
        self.grid = (-(-height // factor), -(-width // factor))
        self.project = nn.Linear(latent_dim, channels[0] * self.grid[0] * self.grid[1])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)
            for c_in, c_out in pairwise(channels)
        )
        self.head = nn.Conv2d(channels[-1], 1, kernel_size=3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        """`z`: `n x d` -> logits `n x P` (`P = H * W`, row-major)."""
        h = nn.functional.silu(self.project(z)).view(z.shape[0], -1, *self.grid)
        for step in self.up:
            h = nn.functional.silu(step(h))
        logits = self.head(h)[:, 0, : self.height, : self.width]
        return logits.reshape(z.shape[0], self.height * self.width)


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
