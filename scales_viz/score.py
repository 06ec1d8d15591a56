"""ScaLES and the baselines shown beside it.

The definition is fixed in ``docs/scales-math.md`` (shared project docs). For a categorical
decoder with logits `l_t` (`V` of them at each of `L` positions), `p_t = softmax(l_t)` and
`c_t = sum_v exp(l_{t,v})`::

    C(z) = d/dz concat_t [p_t(z), 1 / c_t(z)]          (L(V+1) x d)
    ScaLES(z) = -1/2 log det(C^T C)

How it is computed here:

* The logits Jacobian `A = dl/dz` is exact: forward-mode automatic differentiation, one
  Jacobian-vector product per latent direction, batched with :func:`torch.func.vmap` so the
  decoder's primal pass runs once per point and its `d` tangent passes run as one batch.
  Recurrent layers (GRU, LSTM) inside any decoder take a fused tangent rule
  (:mod:`scales_viz.tangents`) instead of PyTorch's per-operation decomposition.
* `C^T C = sum_t A_t^T (S_t S_t + r_t r_t^T) A_t` is formed from `A` directly (never the dense
  block matrix), with the softmax part evaluated relative to each position's most likely token
  so that confident positions keep their relative precision.
* The Gram matrix and its log-determinant are computed in float64 whatever the input dtype, and
  the result is returned in the dtype and on the device of `z`. The Gram's factor rows are
  formed in the Jacobian's own dtype (as accurate as its entries) and widened once.

Degenerate points: where `C^T C` is singular (or not positive definite in floating point) the
score is ``-inf``; where the decoder's logits or their Jacobian are not finite it is ``nan``.
Both affect that point only; the batch is never aborted. Gradients at such points are not
meaningful (NaN).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.func import jvp, vmap
from torch.overrides import TorchFunctionMode

from scales_viz.errors import DecoderError, InputTypeError, InputValueError
from scales_viz.tangents import fast_zero_tangent_shapes, fused_recurrent_tangents

Likelihood = Literal["categorical", "bernoulli"]
Decoder = Callable[[Tensor], Tensor]

LIKELIHOODS: tuple[str, ...] = ("categorical", "bernoulli")
# Memory (bytes) of one chunk's float64 Jacobian when `chunk_size` is None.
AUTO_CHUNK_BYTES_CPU = 64 * 2**20
AUTO_CHUNK_BYTES_CUDA = 1024 * 2**20
GRAM_DTYPE = torch.float64
DISTANCE_CHUNK_ROWS = 4096

__all__ = [
    "LIKELIHOODS",
    "Likelihood",
    "argmax_log_prob",
    "distance_to_data",
    "likelihood",
    "prior_logpdf",
    "scales",
    "scales_and_logits",
]


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def check_latents(z: object, name: str = "z", latent_dim: int | None = None) -> Tensor:
    """Validate a batch of latent points and return it.

    Args:
        z: the candidate `n x d` floating-point tensor.
        name: the argument name used in error messages.
        latent_dim: the required `d`, if known.

    Raises:
        InputTypeError: `z` is not a floating-point tensor.
        InputValueError: `z` is not 2-D, has the wrong `d`, or holds NaN/inf.
    """
    if not isinstance(z, Tensor):
        raise InputTypeError(
            f"`{name}` must be a torch.Tensor of shape `n x d`; got {type(z).__name__}. "
            f"Wrap it with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if not z.is_floating_point():
        raise InputTypeError(
            f"`{name}` must be a floating-point tensor (float32 or float64); got {z.dtype}. "
            f"Use {name}.float()."
        )
    expected = f"`n x {latent_dim}`" if latent_dim is not None else "`n x d`"
    if z.ndim != 2:
        hint = f" Pass {name}[None] for one point." if z.ndim == 1 else ""
        raise InputValueError(
            f"`{name}` must be 2-D, {expected}; got shape {tuple(z.shape)}.{hint}"
        )
    if latent_dim is not None and z.shape[1] != latent_dim:
        raise InputValueError(
            f"`{name}` must be {expected}; got shape {tuple(z.shape)} "
            f"(latent size {z.shape[1]}, expected {latent_dim})."
        )
    bad = ~torch.isfinite(z.detach()).all(dim=1)
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten()[:5].tolist()
        raise InputValueError(
            f"`{name}` must be finite; rows {rows} (of {int(bad.sum())} bad out of "
            f"{z.shape[0]}) hold NaN or inf."
        )
    return z


def _check_likelihood(likelihood: str) -> None:
    if likelihood not in LIKELIHOODS:
        raise InputValueError(f"`likelihood` must be one of {LIKELIHOODS}; got {likelihood!r}.")


def _check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is None:
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InputValueError(f"`chunk_size` must be a positive int or None; got {chunk_size!r}.")


def _expected_rank(likelihood: str) -> tuple[int, str]:
    if likelihood == "categorical":
        return 3, "`n x L x V` logits (likelihood='categorical')"
    return 2, "`n x P` pixel logits (likelihood='bernoulli')"


def check_decoder_output(out: object, n: int, likelihood: str) -> Tensor:
    """Check that a decoder's output has the layout its likelihood needs.

    Raises:
        DecoderError: not a floating tensor, wrong rank, wrong batch size or too few tokens.
    """
    rank, layout = _expected_rank(likelihood)
    if not isinstance(out, Tensor) or not out.is_floating_point():
        got = type(out).__name__ if not isinstance(out, Tensor) else f"a {out.dtype} tensor"
        raise DecoderError(f"the decoder output must be a floating tensor of {layout}; got {got}.")
    if out.ndim != rank or out.shape[0] != n:
        other = "bernoulli" if likelihood == "categorical" else "categorical"
        raise DecoderError(
            f"the decoder output must be {layout} with n={n}; got shape {tuple(out.shape)}. "
            f"If the decoder's output has the other layout, pass likelihood={other!r}."
        )
    if likelihood == "categorical" and out.shape[-1] < 2:
        raise DecoderError(
            f"the decoder output needs V >= 2 tokens per position; got shape {tuple(out.shape)}."
        )
    return out


def _call_decoder(
    decoder: Decoder, z: Tensor, likelihood: str, shown_shape: tuple[int, ...] | None = None
) -> Tensor:
    """`decoder(z)`, with a rejected input or a wrong output layout turned into a clear error.

    `shown_shape` is the caller's `z` shape for the message when `z` is a slice of it.
    """
    shape = shown_shape or tuple(z.shape)
    try:
        out = decoder(z)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise DecoderError(
            f"the decoder rejected `z` of shape {shape} (latent size "
            f"{z.shape[1]}): {exc}. Check that `z` has the decoder's latent size."
        ) from exc
    return check_decoder_output(out, z.shape[0], likelihood)


def _probe(decoder: Decoder, z: Tensor, likelihood: str) -> int:
    """Run the decoder on the first point to turn shape mistakes into clear errors.

    Returns:
        The number of decoder outputs per point (`L*V` or `P`).
    """
    with torch.no_grad():
        out = _call_decoder(decoder, z[:1].detach(), likelihood, tuple(z.shape))
    return int(out[0].numel())


# --------------------------------------------------------------------------------------------
# Evaluation context: eval mode, and backends that support forward-mode AD
# --------------------------------------------------------------------------------------------


# Decoder evaluation holds this lock: a module's train/eval flags and PyTorch's forward-AD
# levels are shared by every thread of the process (a Streamlit server runs sessions in
# threads), so evaluations take turns. Re-entrant, so nested calls in one thread work.
DECODER_LOCK = threading.RLock()


@contextlib.contextmanager
def evaluation_mode(decoder: object) -> Iterator[None]:
    """Put an `nn.Module` (and every submodule) in eval mode, restoring each one's mode after.

    Holds :data:`DECODER_LOCK` throughout, so concurrent callers never see a half-set mode.
    """
    with DECODER_LOCK:
        if not isinstance(decoder, nn.Module):
            yield
            return
        modes = [(module, module.training) for module in decoder.modules()]
        decoder.eval()
        try:
            yield
        finally:
            for module, training in modes:
                module.training = training


def _set_backend_flags(*, mkldnn: bool, cudnn: bool) -> None:
    # Attribute assignment is the documented way to flip these switches.
    setattr(torch.backends.mkldnn, "enabled", mkldnn)  # noqa: B010
    setattr(torch.backends.cudnn, "enabled", cudnn)  # noqa: B010


class _ForwardADSection:
    """A process-wide critical section for forward-mode AD, with kernels that support it.

    Out of the box, forward AD fails through `nn.LSTM` on CPU (the oneDNN/mkldnn RNN kernel),
    cuDNN RNNs, fused scaled-dot-product attention and the `nn.MultiheadAttention` fast path;
    the section switches those global flags to the differentiable kernels and restores them
    on exit. PyTorch's forward-AD levels are process-global too (two threads nesting them
    fail with "invalid index"), so callers in different threads (a Streamlit server's
    sessions) take turns; a re-entrant lock lets a decoder call ScaLES inside ScaLES.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with self._lock:
            saved = (
                bool(torch.backends.mkldnn.enabled),
                bool(torch.backends.cudnn.enabled),
                torch.backends.mha.get_fastpath_enabled(),
            )
            _set_backend_flags(mkldnn=False, cudnn=False)
            torch.backends.mha.set_fastpath_enabled(False)
            try:
                with sdpa_kernel([SDPBackend.MATH]):
                    yield
            finally:
                _set_backend_flags(mkldnn=saved[0], cudnn=saved[1])
                torch.backends.mha.set_fastpath_enabled(saved[2])


forward_ad_backends = _ForwardADSection()


def _layer_norm(
    input: Tensor,
    normalized_shape: list[int] | tuple[int, ...],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    dims = tuple(range(-len(normalized_shape), 0))
    centred = input - input.mean(dim=dims, keepdim=True)
    out = centred * torch.rsqrt(centred.pow(2).mean(dim=dims, keepdim=True) + eps)
    if weight is not None:
        out = out * weight
    return out + bias if bias is not None else out


def _instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    if not use_input_stats:
        return nn.functional.instance_norm(
            input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps
        )
    dims = tuple(range(2, input.ndim))
    centred = input - input.mean(dim=dims, keepdim=True)
    out = centred * torch.rsqrt(centred.pow(2).mean(dim=dims, keepdim=True) + eps)
    channel = (1, -1) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.view(channel)
    return out + bias.view(channel) if bias is not None else out


class SecondOrderNorms(TorchFunctionMode):
    """Run layer and instance norm as plain tensor algebra while differentiating a Jacobian.

    PyTorch's forward-mode formulas for `native_layer_norm` and `native_batch_norm` (which
    instance norm uses) read the saved mean and inverse std as constants, so reverse mode
    over them (the gradient of ScaLES) comes out wrong. The composite forms below are
    differentiable to any order; they are only switched on when a gradient is requested.
    """

    _REPLACEMENTS: ClassVar[dict[Callable[..., Tensor], Callable[..., Tensor]]] = {
        nn.functional.layer_norm: _layer_norm,
        nn.functional.instance_norm: _instance_norm,
    }

    def __torch_function__(
        self,
        func: Callable[..., object],
        types: object,
        args: tuple[object, ...] = (),
        kwargs: dict[str, object] | None = None,
    ) -> object:
        replacement = self._REPLACEMENTS.get(func, func)  # type: ignore[arg-type]
        return replacement(*args, **(kwargs or {}))


# --------------------------------------------------------------------------------------------
# The exact Jacobian and the Gram matrix
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _second_order_context() -> Iterator[None]:
    with torch.enable_grad(), SecondOrderNorms():
        yield


def logits_and_jacobian(decoder: Decoder, z: Tensor) -> tuple[Tensor, Tensor]:
    """Decoder logits and their exact Jacobian with respect to `z`, by forward-mode AD.

    A decoder may supply its own exact Jacobian as a method
    `forward_with_jacobian(z) -> (logits, jacobian)` with the layout below (the built-in
    :class:`~scales_viz.models.SoftmaxFeedbackRNNDecoder` does); it is used instead of generic
    forward-mode AD. Tests hold such methods to the same float64 reference.

    Args:
        decoder: maps an `m x d` tensor to logits `m x ...`.
        z: an `m x d` tensor.

    Returns:
        `(logits, jacobian)`: logits `m x ...` and the Jacobian `d x m x ...` (latent direction
        first), both in the dtype of the decoder's output.
    """
    structured = getattr(decoder, "forward_with_jacobian", None)
    if callable(structured):
        logits, jacobian = structured(z)
        return logits, jacobian
    m, d = z.shape
    basis = torch.eye(d, dtype=z.dtype, device=z.device)

    def push(direction: Tensor) -> tuple[Tensor, Tensor]:
        out, tangent = jvp(decoder, (z,), (direction.expand(m, d),))  # type: ignore[misc]
        return out, tangent

    # Recurrent layers take their fused tangent rule (each call without a gradient does).
    with fused_recurrent_tangents(decoder), fast_zero_tangent_shapes():
        # out_dims=None: the primal output does not depend on the tangent direction.
        logits, jacobian = vmap(push, out_dims=(None, 0))(basis)  # type: ignore[arg-type]
    return logits, jacobian


def _gram(rows: Tensor) -> Tensor:
    """`sum_k c_k c_k^T` per point from factor rows laid out `m x d x K` (any strides, such as
    a transposed `d x m x K` buffer): an `m x d x d` tensor."""
    return rows @ rows.mT


def _categorical_gram(logits: Tensor, jacobian: Tensor, overwrite: bool) -> Tensor:
    """`C^T C` for the softmax-plus-normaliser map, `m x d x d` in float64.

    `logits`: `m x L x V` float64; `jacobian`: `d x m x L x V` in the decoder's dtype
    (overwritten if `overwrite` and no gradient is needed). The softmax rows `S_t A_t` and the
    normaliser rows `r_t^T A_t` enter as two Gram terms, so `C` itself is never concatenated.
    The rows are formed in the Jacobian's own dtype (they are as accurate as its entries),
    widened once to float64 in their own layout, and the Gram is taken per point on a strided
    view of that buffer.
    """
    d = jacobian.shape[0]
    work = jacobian.dtype
    p = torch.softmax(logits, dim=-1).to(work)  # m x L x V
    inv_c = torch.exp(-torch.logsumexp(logits, dim=-1))  # m x L, float64
    # S_t A_t = S_t (A_t - 1 a_t^T) for any row a_t, because S_t 1 = 0. Taking a_t as the most
    # likely token's row avoids cancellation in rows where p_t is nearly one-hot.
    top = logits.argmax(dim=-1, keepdim=True)  # m x L x 1
    top_row = torch.take_along_dim(jacobian, top.expand(d, *top.shape), dim=-1)  # d x m x L x 1
    inplace = not torch.is_grad_enabled()
    diff = jacobian.sub_(top_row) if inplace and overwrite else jacobian - top_row
    diff_mean = torch.einsum("dmlv,mlv->dml", diff, p)[..., None]
    # r_t^T A_t = -(p_t^T A_t) / c_t, with p_t^T A_t = a_t + p_t^T (A_t - 1 a_t^T).
    normaliser_rows = -(top_row + diff_mean).squeeze(-1).to(GRAM_DTYPE) * inv_c  # d x m x L
    softmax_rows = diff.sub_(diff_mean).mul_(p) if inplace else (diff - diff_mean) * p
    return _gram(softmax_rows.to(GRAM_DTYPE).flatten(2).transpose(0, 1)) + _gram(
        normaliser_rows.transpose(0, 1)
    )


def _bernoulli_factor(logits: Tensor, jac: Tensor) -> Tensor:
    """`C = diag(p(1-p)) A` for sigmoid outputs, `d x m x P`; `p(1-p)` in log space."""
    slope = torch.exp(-nn.functional.softplus(logits) - nn.functional.softplus(-logits))
    return slope * jac


def gram_matrix(
    logits: Tensor,
    jacobian: Tensor,
    *,
    likelihood: str = "categorical",
    polarity: bool = False,
    overwrite: bool = False,
) -> Tensor:
    """`C^T C` for each point, in float64.

    Args:
        logits: `m x L x V` (categorical) or `m x P` (bernoulli).
        jacobian: `d x m x ...`, as returned by :func:`logits_and_jacobian`.
        likelihood: "categorical" or "bernoulli".
        polarity: use the logits map itself (`A^T A`) instead of the output distribution.
        overwrite: the Jacobian may be used as scratch space (a caller that owns it and does
            not need a gradient); otherwise it is not modified.

    Returns:
        An `m x d x d` float64 tensor.
    """
    logits = logits.to(GRAM_DTYPE)
    if polarity:
        rows = jacobian.flatten(2)
    elif likelihood == "categorical":
        return _categorical_gram(logits, jacobian, overwrite)
    else:
        rows = _bernoulli_factor(logits.flatten(1), jacobian.flatten(2))
    return _gram(rows.to(GRAM_DTYPE).transpose(0, 1))


def neg_half_logdet(gram: Tensor) -> Tensor:
    """`-1/2 log det(G)` per point; `-inf` where `G` is singular, NaN where it is not finite."""
    finite = torch.isfinite(gram).all(dim=-1).all(dim=-1)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    safe = torch.where(finite[:, None, None], gram, eye)
    sign, logabsdet = torch.linalg.slogdet(safe)
    score = torch.where(sign > 0, -0.5 * logabsdet, torch.full_like(logabsdet, -math.inf))
    return torch.where(finite, score, torch.full_like(score, math.nan))


def auto_chunk_size(n: int, d: int, outputs: int, device: torch.device) -> int:
    """Points per chunk so that one chunk's float64 Jacobian stays within a memory budget."""
    budget = AUTO_CHUNK_BYTES_CUDA if device.type == "cuda" else AUTO_CHUNK_BYTES_CPU
    per_point = max(1, d * outputs * torch.finfo(GRAM_DTYPE).bits // 8)
    return max(1, min(n, budget // per_point))


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def scales(
    decoder: Decoder,
    z: Tensor,
    *,
    likelihood: Likelihood = "categorical",
    polarity: bool = False,
    prior_weight: float = 0.0,
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Tensor:
    """The ScaLES score of each latent point: `-1/2 log det(C^T C)`.

    Args:
        decoder: a callable (usually an `nn.Module`) mapping an `m x d` tensor to logits,
            `m x L x V` for ``likelihood="categorical"`` or `m x P` for ``"bernoulli"``.
            A module is evaluated in eval mode; its modes are restored afterwards.
        z: an `n x d` floating-point tensor of latent points, finite.
        likelihood: the decoder's output distribution.
        polarity: if True, score the logits map itself, `-1/2 log det(A^T A)` (a baseline).
        prior_weight: adds `prior_weight * (-||z||^2 / 2)` (the paper's first version).
        chunk_size: points per batched Jacobian; None picks one that bounds memory. Results
            do not depend on it.
        progress: called as `progress(done, n)` after each chunk (for progress bars).

    Returns:
        An `n` tensor in the dtype and on the device of `z`; differentiable in `z` when `z`
        requires grad (exact second-order gradient through the decoder). Singular points give
        ``-inf``, non-finite decoder output gives NaN (see the module docstring).

    Raises:
        InputTypeError: `z` is not a floating tensor.
        InputValueError: `z` is not `n x d` or holds NaN/inf; bad options.
        DecoderError: the decoder rejects `z` or returns output of the wrong layout.
    """
    _check_likelihood(likelihood)
    _check_chunk_size(chunk_size)
    if not math.isfinite(prior_weight):
        raise InputValueError(f"`prior_weight` must be a finite number; got {prior_weight!r}.")
    z = check_latents(z)
    score, _ = _scales_pass(decoder, z, likelihood, polarity, chunk_size, progress, False)
    if prior_weight:
        score = score + prior_weight * prior_logpdf(z.to(GRAM_DTYPE), normalised=False)
    return score.to(z.dtype)


def scales_and_logits(
    decoder: Decoder,
    z: Tensor,
    *,
    likelihood: Likelihood = "categorical",
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Tensor, Tensor]:
    """ScaLES of each point and the decoder's logits there, from the same decoder pass.

    The logits are the primal output of the Jacobian computation, so a caller that also needs
    decodings or the likelihood (a slice, say) does not run the decoder again.

    Returns:
        `(score, logits)`: an `n` tensor and `n x ...` logits, both detached, in the dtype
        and on the device of `z`.

    Raises:
        As :func:`scales`.
    """
    _check_likelihood(likelihood)
    _check_chunk_size(chunk_size)
    z = check_latents(z).detach()
    score, logits = _scales_pass(decoder, z, likelihood, False, chunk_size, progress, True)
    assert logits is not None
    return score.to(z.dtype), logits.to(z.dtype)


def _scales_pass(
    decoder: Decoder,
    z: Tensor,
    likelihood: str,
    polarity: bool,
    chunk_size: int | None,
    progress: Callable[[int, int], None] | None,
    keep_logits: bool,
) -> tuple[Tensor, Tensor | None]:
    """The chunked ScaLES loop (float64 score), optionally keeping each chunk's logits."""
    n, d = z.shape
    if n == 0:
        return z.new_empty(0, dtype=GRAM_DTYPE), (z.new_empty(0) if keep_logits else None)
    with evaluation_mode(decoder):
        outputs = _probe(decoder, z, likelihood)
        size = chunk_size or auto_chunk_size(n, d, outputs, z.device)
        grad_ctx: contextlib.AbstractContextManager[object] = (
            _second_order_context() if z.requires_grad else torch.no_grad()
        )
        # Only a Jacobian the generic path made here is scratch space: a decoder's own
        # forward_with_jacobian might hand back a tensor it keeps.
        owned = not callable(getattr(decoder, "forward_with_jacobian", None))
        with forward_ad_backends(), grad_ctx:
            parts, kept = [], []
            done = 0
            for chunk in z.split(size):
                logits, jac = logits_and_jacobian(decoder, chunk)
                check_decoder_output(logits, chunk.shape[0], likelihood)
                gram = gram_matrix(
                    logits, jac, likelihood=likelihood, polarity=polarity, overwrite=owned
                )
                parts.append(neg_half_logdet(gram))
                if keep_logits:
                    kept.append(logits.detach())
                done += chunk.shape[0]
                if progress is not None:
                    progress(done, n)
    return torch.cat(parts), (torch.cat(kept) if keep_logits else None)


def argmax_log_prob(logits: Tensor, likelihood: str = "categorical") -> Tensor:
    """Log-probability of the argmax decoding from logits (`n x L x V` or `n x P`), float64.

    Categorical: `sum_t log max_v p_{t,v}`. Bernoulli: `sum_i log max(p_i, 1 - p_i)`.
    """
    logits = logits.to(GRAM_DTYPE)
    if likelihood == "categorical":
        per_position = logits.amax(-1) - torch.logsumexp(logits, -1)
    else:
        per_position = -nn.functional.softplus(-logits.abs())
    return per_position.flatten(1).sum(1)


def likelihood(
    decoder: Decoder,
    z: Tensor,
    *,
    likelihood: Likelihood = "categorical",
    chunk_size: int | None = None,
) -> Tensor:
    """Log-probability of each point's argmax decoding (a baseline beside ScaLES).

    Categorical: `sum_t log max_v p_{t,v}`. Bernoulli: `sum_i log max(p_i, 1 - p_i)`.

    Args:
        decoder: as for :func:`scales`.
        z: an `n x d` tensor.
        likelihood: the decoder's output distribution.
        chunk_size: points per decoder call (None: all at once).

    Returns:
        An `n` tensor in the dtype and on the device of `z` (differentiable in `z`).
    """
    _check_likelihood(likelihood)
    _check_chunk_size(chunk_size)
    z = check_latents(z)
    if z.shape[0] == 0:
        return z.new_empty(0)
    parts = []
    grad_ctx = torch.enable_grad() if z.requires_grad else torch.no_grad()
    with evaluation_mode(decoder), grad_ctx:
        for chunk in z.split(chunk_size or z.shape[0]):
            parts.append(argmax_log_prob(_call_decoder(decoder, chunk, likelihood), likelihood))
    return torch.cat(parts).to(z.dtype)


def prior_logpdf(z: Tensor, scale: float = 1.0, *, normalised: bool = True) -> Tensor:
    """Log-density of `N(0, scale^2 I)` at each row of `z`.

    Args:
        z: an `n x d` tensor.
        scale: the prior's standard deviation (a model's `prior_scale`).
        normalised: include the constant `-d log(scale) - d/2 log(2 pi)`; without it the
            result is `-||z||^2 / (2 scale^2)`.

    Returns:
        An `n` tensor in the dtype and on the device of `z`.
    """
    z = check_latents(z)
    if not (math.isfinite(scale) and scale > 0):
        raise InputValueError(f"`scale` must be a positive finite number; got {scale!r}.")
    quad = -0.5 * (z / scale).pow(2).sum(dim=1)
    if not normalised:
        return quad
    d = z.shape[1]
    return quad - d * math.log(scale) - 0.5 * d * math.log(2 * math.pi)


def distance_to_data(z: Tensor, data_latents: Tensor, k: int = 3) -> Tensor:
    """Minus the mean Euclidean distance from each point to its `k` nearest data latents.

    Args:
        z: an `n x d` tensor.
        data_latents: an `m x d` tensor of encoded data points (`m >= k`).
        k: neighbours averaged.

    Returns:
        An `n` tensor in the dtype and on the device of `z` (higher = closer to the data).
    """
    z = check_latents(z)
    data = check_latents(data_latents, "data_latents", latent_dim=z.shape[1])
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputValueError(f"`k` must be a positive int; got {k!r}.")
    if data.shape[0] < k:
        raise InputValueError(
            f"`data_latents` needs at least k={k} rows; got {data.shape[0]}. Lower `k`."
        )
    data = data.to(device=z.device, dtype=z.dtype)
    parts = []
    for chunk in z.split(DISTANCE_CHUNK_ROWS):
        dist = torch.cdist(chunk, data)
        parts.append(-dist.topk(k, dim=1, largest=False).values.mean(dim=1))
    if not parts:
        return z.new_empty(0)
    return torch.cat(parts)
