"""An independent float64 reference for ScaLES: the dense Jacobian by reverse-mode autograd.

It follows the definition literally: build the output map `g(z)` (softmax probabilities and
the normaliser's reciprocal at every position, or sigmoid pixels), take its full Jacobian `C`
point by point with `torch.autograd.functional.jacobian`, and call `slogdet(C^T C)`. It shares
no code with `scales_viz.score`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn


def _output_map(decoder: nn.Module, likelihood: str, polarity: bool) -> Callable[[Tensor], Tensor]:
    def g(x: Tensor) -> Tensor:
        logits = decoder(x[None])[0]
        if polarity:
            return logits.flatten()
        if likelihood == "bernoulli":
            return torch.sigmoid(logits)
        probs = torch.softmax(logits, dim=-1)
        inv_c = torch.exp(-torch.logsumexp(logits, dim=-1, keepdim=True))
        return torch.cat([probs, inv_c], dim=-1).flatten()

    return g


def reference_scales(
    decoder: nn.Module,
    z: Tensor,
    likelihood: str = "categorical",
    *,
    polarity: bool = False,
    prior_weight: float = 0.0,
) -> Tensor:
    """ScaLES of each row of `z` in float64 (a float64 copy of `decoder`, eval mode)."""
    dec = copy.deepcopy(decoder).double().eval()
    g = _output_map(dec, likelihood, polarity)
    scores = []
    for point in z.detach().double():
        jac = torch.autograd.functional.jacobian(g, point)
        _, logdet = torch.linalg.slogdet(jac.T @ jac)
        scores.append(-0.5 * logdet - prior_weight * point.pow(2).sum() / 2)
    return torch.stack(scores)


def reference_gradient(
    decoder: nn.Module, z: Tensor, likelihood: str = "categorical", step: float = 1e-5
) -> Tensor:
    """Gradient of the summed reference score by central differences in float64."""
    z = z.detach().double()
    grad = torch.zeros_like(z)
    for k in range(z.shape[1]):
        shift = torch.zeros_like(z)
        shift[:, k] = step
        up = reference_scales(decoder, z + shift, likelihood)
        down = reference_scales(decoder, z - shift, likelihood)
        grad[:, k] = (up - down) / (2 * step)
    return grad
