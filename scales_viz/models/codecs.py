"""Codecs between decoded objects (strings, images) and the tensors a VAE reads and writes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from scales_viz.errors import InputTypeError, InputValueError

__all__ = ["ImageCodec", "SequenceCodec"]


class SequenceCodec:
    """Strings <-> token indices `n x L`, with the pad as the vocabulary's last token.

    Args:
        vocab: the tokens, in index order; the last one is the pad (end of sequence).
        seq_len: `L`; shorter strings are padded at the end.
        tokenize: splits a string into tokens of `vocab`.
    """

    def __init__(
        self, vocab: Sequence[str], seq_len: int, tokenize: Callable[[str], list[str]]
    ) -> None:
        if len(set(vocab)) != len(vocab):
            raise InputValueError(f"vocabulary tokens must be unique; got {list(vocab)}.")
        self.vocab = tuple(vocab)
        self.seq_len = seq_len
        self.tokenize = tokenize
        self.pad_index = len(self.vocab) - 1
        self._index = {token: i for i, token in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        """`V`."""
        return len(self.vocab)

    def to_indices(self, texts: Sequence[str]) -> Tensor:
        """Token indices `n x L` (int64) of `texts`.

        Raises:
            InputTypeError: an item is not a string.
            InputValueError: an item has a token outside the vocabulary, or more than `L`.
        """
        out = torch.full((len(texts), self.seq_len), self.pad_index, dtype=torch.int64)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputTypeError(f"item {row} must be a string; got {type(text).__name__}.")
            tokens = self.tokenize(text)
            if len(tokens) > self.seq_len:
                raise InputValueError(
                    f"item {row} ({text!r}) has {len(tokens)} tokens; this model takes at "
                    f"most {self.seq_len}."
                )
            for col, token in enumerate(tokens):
                if token not in self._index or col >= self.seq_len:
                    raise InputValueError(
                        f"item {row} ({text!r}): token {token!r} at position {col} is not in "
                        f"the vocabulary {list(self.vocab[:-1])}."
                    )
                out[row, col] = self._index[token]
        return out

    def one_hot(self, indices: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """One-hot `n x L x V` of token indices `n x L`."""
        return torch.nn.functional.one_hot(indices.long(), self.vocab_size).to(dtype)

    def to_texts(self, indices: Tensor) -> list[str]:
        """Strings of token indices `n x L`; pads are dropped wherever they occur.

        Dropping every pad (not only a trailing run) is how the ScaLES authors read decodings.
        """
        pad = self.vocab[self.pad_index]
        rows = indices.detach().cpu().tolist()
        return ["".join(self.vocab[i] for i in row if self.vocab[i] != pad) for row in rows]


class ImageCodec:
    """Images `n x H x W` (values in [0, 1]) <-> flat pixels `n x P`."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = (int(shape[0]), int(shape[1]))

    @property
    def pixels(self) -> int:
        """`P = H * W`."""
        return self.shape[0] * self.shape[1]

    def to_pixels(self, images: Sequence[np.ndarray] | np.ndarray | Tensor) -> Tensor:
        """Flat float32 pixels `n x P` of images shaped `H x W` (or already flat).

        Raises:
            InputValueError: an image has another size, non-finite values, or values
                outside [0, 1].
        """
        array = np.asarray(
            images.detach().cpu().numpy() if isinstance(images, Tensor) else images,
            dtype=np.float32,
        )
        if array.ndim < 2 or array[0].size != self.pixels:
            raise InputValueError(
                f"images must be n x {self.shape[0]} x {self.shape[1]} or n x {self.pixels}; "
                f"got shape {array.shape}."
            )
        flat = array.reshape(array.shape[0], self.pixels)
        if not np.isfinite(flat).all() or flat.min(initial=0) < 0 or flat.max(initial=0) > 1:
            raise InputValueError("image pixels must be finite and in [0, 1].")
        return torch.from_numpy(flat.copy())

    def to_images(self, probabilities: Tensor) -> list[np.ndarray]:
        """`H x W` float32 arrays of pixel probabilities `n x P`."""
        array = probabilities.detach().cpu().to(torch.float32).numpy()
        return [row.reshape(self.shape) for row in array]
