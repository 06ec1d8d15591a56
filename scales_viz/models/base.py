"""The `LatentModel` protocol, its optional capabilities, and `VAEModel`, which has them all.

A latent model bundles what the app needs to know about a pretrained VAE: its decoder (latents
to logits), how logits become objects (strings, images), which objects are valid, the
objectives (higher is better, NaN for invalid objects), the encoder, and a reference set of
encoded data latents.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from scales_viz.errors import InputValueError
from scales_viz.models.codecs import ImageCodec, SequenceCodec
from scales_viz.score import check_latents, scales

__all__ = [
    "DecodesLogits",
    "Encodes",
    "EncodingModel",
    "LatentModel",
    "LikelihoodKind",
    "Objective",
    "RenderKind",
    "VAEModel",
]

LikelihoodKind = Literal["categorical", "bernoulli"]
RenderKind = Literal["text", "molecule", "image"]
#: Rows per decoder call when decoding or encoding many points.
DECODE_CHUNK = 2048


@dataclass(frozen=True)
class Objective:
    """A named black-box function of decoded objects; higher is better, NaN for invalid.

    Attributes:
        name: identifier, e.g. ``fit_target``.
        description: one line for the UI.
        batch: objects -> float64 array of values.
        latent: optional differentiable form, `z` (`n x d`) -> values `n`, defined for every
            latent (not NaN for invalid decodings): for gradient-based optimisers.
    """

    name: str
    description: str
    batch: Callable[[Sequence[Any]], np.ndarray]
    latent: Callable[[Tensor], Tensor] | None = field(default=None, compare=False)

    def __call__(self, obj: Any) -> float:
        """The objective of one object."""
        return float(self.batch([obj])[0])


def per_object(function: Callable[[Any], float]) -> Callable[[Sequence[Any]], np.ndarray]:
    """Lift a one-object function to a batch function returning float64."""

    def batch(objects: Sequence[Any]) -> np.ndarray:
        return np.array([function(obj) for obj in objects], dtype=np.float64)

    return batch


@runtime_checkable
class LatentModel(Protocol):
    """What scales-viz's scoring, slicing, projection and optimisation code uses of a model.

    :class:`VAEModel` has all of it, and so does
    :class:`~scales_viz.lso.teaching.PlaneModel` (a model restricted to a plane). Members are
    read-only to callers; an implementation may store them as plain attributes. Optional
    capabilities that only some models have are separate protocols: :class:`DecodesLogits`
    and :class:`Encodes`.
    """

    @property
    def name(self) -> str:
        """The model's name (run records, map and cache file names, messages)."""
        ...

    @property
    def latent_dim(self) -> int:
        """`d`, the width of a latent."""
        ...

    @property
    def prior_scale(self) -> float:
        """Std of the N(0, prior_scale^2 I) prior the model was trained with."""
        ...

    @property
    def likelihood(self) -> LikelihoodKind:
        """The decoder's likelihood: ``categorical`` (sequences) or ``bernoulli`` (images)."""
        ...

    @property
    def objectives(self) -> Mapping[str, Objective]:
        """The black-box objectives of decoded objects, by name."""
        ...

    @property
    def data_latents(self) -> Tensor:
        """Reference latents of encoded data, `m x d` float32."""
        ...

    def decoder_for(self, z: Tensor, /) -> nn.Module:
        """The decoder (`n x d` latents -> logits) on `z`'s device and dtype."""
        ...

    def decode(self, z: Tensor, /) -> list[Any]:
        """The objects of the argmax (categorical) or mean (Bernoulli) decoding of `z`."""
        ...

    def validity(self, objects: Sequence[Any], /) -> np.ndarray:
        """Boolean validity of each decoded object."""
        ...

    def objective_values(self, objects: Sequence[Any], name: str, /) -> np.ndarray:
        """Values of objective `name` on `objects`: float64, NaN where invalid."""
        ...

    def scales(self, z: Tensor, /, *, progress: Callable[[int, int], None] | None = None) -> Tensor:
        """ScaLES of each row of `z`, reporting ``progress(done, total)`` if given."""
        ...


@runtime_checkable
class DecodesLogits(Protocol):
    """Optional capability: objects straight from decoder logits.

    A model that has it lets a slice take ScaLES, the likelihood and the decodings from one
    decoder pass. :class:`VAEModel` has it; a :class:`~scales_viz.lso.teaching.PlaneModel`
    does not. Check with ``isinstance(model, DecodesLogits)``.
    """

    def objects_from_logits(self, logits: Tensor, /) -> list[Any]:
        """The decoded objects of decoder logits (argmax strings, or mean images)."""
        ...


@runtime_checkable
class Encodes(Protocol):
    """Optional capability: an encoder, to place data objects in the latent space.

    :class:`VAEModel` has it; a :class:`~scales_viz.lso.teaching.PlaneModel` does not.
    """

    def encode(self, objects: Sequence[Any], /) -> Tensor:
        """Encoder means `n x d` of data objects."""
        ...


class EncodingModel(LatentModel, Encodes, Protocol):
    """A :class:`LatentModel` with an encoder (what importing strings into runs needs)."""


class VAEModel:
    """A trained VAE: decoder and encoder modules, codec, validity rule and objectives.

    Args:
        name: model name.
        decoder: `z` -> logits; used in eval mode.
        encoder: data tensor -> `(mu, sigma)`.
        codec: strings <-> tokens, or images <-> pixels.
        validity: batch validity of decoded objects.
        objectives: by name.
        render: how the UI draws objects.
        prior_scale: std of the prior the model was trained with.
        data_latents: `m x d` encoded reference data.
        data_objects: the `m` objects behind `data_latents`.
        manifest: the model's manifest record (model card facts).
        directory: where the model's files are, if it came from files.
    """

    def __init__(
        self,
        *,
        name: str,
        decoder: nn.Module,
        encoder: nn.Module,
        codec: SequenceCodec | ImageCodec,
        validity: Callable[[Sequence[Any]], np.ndarray],
        objectives: Mapping[str, Objective],
        render: RenderKind,
        prior_scale: float,
        data_latents: Tensor,
        data_objects: Sequence[Any],
        manifest: Mapping[str, Any] | None = None,
        directory: Path | None = None,
    ) -> None:
        self.name = name
        self.decoder = decoder.eval().requires_grad_(False)
        self.encoder = encoder.eval().requires_grad_(False)
        self.codec = codec
        self._validity = validity
        self.objectives = dict(objectives)
        self.render: RenderKind = render
        self.prior_scale = float(prior_scale)
        self.likelihood: LikelihoodKind = (
            "categorical" if isinstance(codec, SequenceCodec) else "bernoulli"
        )
        self.latent_dim = int(data_latents.shape[1])
        self._data_latents = data_latents.detach().to(torch.float32)
        self.data_objects = list(data_objects)
        self.manifest = dict(manifest or {})
        self.directory = directory
        self._copies: dict[tuple[torch.device, torch.dtype], nn.Module] = {}

    def __repr__(self) -> str:
        return (
            f"VAEModel(name={self.name!r}, latent_dim={self.latent_dim}, "
            f"likelihood={self.likelihood!r}, prior_scale={self.prior_scale})"
        )

    @property
    def data_latents(self) -> Tensor:
        """Encoder means of the reference data, `m x d` float32 (a copy)."""
        return self._data_latents.clone()

    def decoder_for(self, z: Tensor) -> nn.Module:
        """The decoder on `z`'s device and dtype (copies are cached; the original stays)."""
        key = (z.device, z.dtype)
        param = next(self.decoder.parameters())
        if (param.device, param.dtype) == key:
            return self.decoder
        if key not in self._copies:
            self._copies[key] = copy.deepcopy(self.decoder).to(device=z.device, dtype=z.dtype)
        return self._copies[key]

    def decode_logits(self, z: Tensor) -> Tensor:
        """`z` (`n x d`) -> logits `n x L x V` or `n x P`, on `z`'s device and dtype.

        Differentiable in `z` when `z` requires grad.

        Raises:
            InputValueError, InputTypeError: `z` is not a finite `n x d` float tensor.
        """
        check_latents(z, "z", self.latent_dim)
        decoder = self.decoder_for(z)
        return torch.cat([decoder(chunk) for chunk in z.split(DECODE_CHUNK)])

    def decode(self, z: Tensor) -> list[Any]:
        """Argmax strings (categorical) or mean images `H x W` (Bernoulli) of `z`."""
        with torch.no_grad():
            logits = self.decode_logits(z)
        return self.objects_from_logits(logits)

    def objects_from_logits(self, logits: Tensor) -> list[Any]:
        """The decoded objects of decoder logits (argmax strings, or mean images)."""
        if isinstance(self.codec, SequenceCodec):
            return self.codec.to_texts(logits.argmax(-1))
        return self.codec.to_images(torch.sigmoid(logits.float()))

    def validity(self, objects: Sequence[Any]) -> np.ndarray:
        """Boolean validity of each object."""
        return np.asarray(self._validity(objects), dtype=bool)

    def is_valid(self, obj: Any) -> bool:
        """Whether one decoded object is valid."""
        return bool(self.validity([obj])[0])

    def objective_values(self, objects: Sequence[Any], name: str) -> np.ndarray:
        """Values of objective `name` on `objects`: float64, NaN where invalid.

        Only valid objects are evaluated, and each distinct string once (decodings of nearby
        latents repeat a lot, and chemistry objectives are slow).

        Raises:
            InputValueError: no objective of that name.
        """
        if name not in self.objectives:
            raise InputValueError(
                f"model {self.name!r} has no objective {name!r}; it has {sorted(self.objectives)}."
            )
        values = np.full(len(objects), np.nan)
        chosen = np.flatnonzero(self.validity(objects))
        if chosen.size == 0:
            return values
        batch = self.objectives[name].batch
        picked = [objects[int(i)] for i in chosen]
        if all(isinstance(obj, str) for obj in picked):
            distinct = list(dict.fromkeys(picked))
            found = dict(zip(distinct, np.asarray(batch(distinct), dtype=np.float64), strict=True))
            values[chosen] = [found[obj] for obj in picked]
        else:
            values[chosen] = np.asarray(batch(picked), dtype=np.float64)
        return values

    def to_inputs(self, objects: Sequence[Any]) -> Tensor:
        """The encoder's input tensor for data objects (one-hot sequences or pixels)."""
        if isinstance(self.codec, SequenceCodec):
            return self.codec.one_hot(self.codec.to_indices(objects))
        return self.codec.to_pixels(objects)

    def encode(self, objects: Sequence[Any]) -> Tensor:
        """Encoder means `n x d` (float32, CPU) of data objects.

        Raises:
            InputValueError, InputTypeError: an object cannot be encoded (unknown token,
                too long, wrong image size); the message names the item.
        """
        inputs = self.to_inputs(objects)
        with torch.no_grad():
            return torch.cat([self.encoder(chunk)[0] for chunk in inputs.split(DECODE_CHUNK)])

    def scales(self, z: Tensor, **options: Any) -> Tensor:
        """ScaLES of `z` under this model's decoder (see :func:`scales_viz.scales`)."""
        return scales(self.decoder_for(z), z, likelihood=self.likelihood, **options)

    def sample_prior(self, n: int, *, seed: int, scale: float = 1.0) -> Tensor:
        """`n x d` draws from N(0, (scale * prior_scale)^2 I), float32, from `seed`."""
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.latent_dim, generator=gen) * (scale * self.prior_scale)
