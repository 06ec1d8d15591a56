"""Drawing decoded objects in Streamlit: expression text, molecule drawings, digit images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st

from scales_viz.models import VAEModel
from scales_viz.models.molecules import molecule_svg

#: Nearest-neighbour upscaling: the browser would blur an 8x8 image stretched to display size.
IMAGE_UPSCALE = 12
VALID_MARK = "valid"
INVALID_MARK = "INVALID"


def upscale(image: np.ndarray, factor: int = IMAGE_UPSCALE) -> np.ndarray:
    """A pixel image enlarged by repeating pixels, values clipped to [0, 1]."""
    return np.clip(np.kron(np.asarray(image, dtype=np.float32), np.ones((factor, factor))), 0, 1)


def mosaic(images: Sequence[np.ndarray], columns: int, gap: int = 1) -> np.ndarray:
    """Tile equally sized images row by row into one array (top row first)."""
    if not images:
        return np.zeros((1, 1), dtype=np.float32)
    h, w = np.asarray(images[0]).shape
    rows = -(-len(images) // columns)
    out = np.ones((rows * (h + gap) - gap, columns * (w + gap) - gap), dtype=np.float32)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    return out


def render_object(model: VAEModel, obj: Any, caption: str = "") -> None:
    """Draw one decoded object in the current container."""
    if model.render == "image":
        st.image(upscale(obj), caption=caption or None, clamp=True)
    elif model.render == "molecule":
        # Every cell has a drawing of the same size and one caption under it (the mark and
        # the whole SMILES, wrapped), so a grid's rows stay aligned.
        smiles = str(obj) or "(empty)"
        svg = molecule_svg(obj) or _no_molecule_svg()
        st.image(svg, caption=f"{caption} {smiles}".strip(), width="stretch")
    else:
        st.code(str(obj) or "(empty)", language=None)
        if caption:
            st.caption(caption)


def _no_molecule_svg(size: int = 220) -> str:
    """A drawing-sized placeholder for a SMILES that RDKit cannot parse."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}">'
        f'<rect width="{size}" height="{size}" fill="#f4f4f4"/>'
        f'<text x="50%" y="50%" text-anchor="middle" font-family="sans-serif" '
        f'font-size="14" fill="#888">no valid molecule</text></svg>'
    )


def render_grid(
    model: VAEModel, objects: Sequence[Any], captions: Sequence[str], columns: int = 4
) -> None:
    """Draw objects in a grid of `columns`, each with its caption."""
    for start in range(0, len(objects), columns):
        cells = st.columns(columns)
        for cell, obj, caption in zip(
            cells, objects[start : start + columns], captions[start : start + columns], strict=False
        ):
            with cell:
                render_object(model, obj, caption)


def plane_mosaic(model: VAEModel, plane: Any, extent: float, side: int) -> None:
    """The decoded images of a `side x side` grid over `plane` (a pixel model), top = +b."""
    import torch

    from scales_viz.slices import SliceSpec

    spec = SliceSpec(plane, extent, side)
    images = model.decode(torch.as_tensor(spec.latents(), dtype=torch.float32))
    # Rows of the grid run bottom (b = -extent) to top; an image's first row is its top.
    ordered = [images[i * side + j] for i in reversed(range(side)) for j in range(side)]
    st.image(
        upscale(mosaic(ordered, side), 4),
        caption=f"Decoded images over the plane ({side}x{side}; top = +b)",
        clamp=True,
    )
