"""scales-viz: ScaLES of chosen latent points on the built-in digits-2d model.

Run with ``streamlit run app.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from scales_viz import likelihood, prior_logpdf, scales
from scales_viz.errors import ScalesVizError
from scales_viz.models import VAEModel, load_model

COLUMNS = ("z1", "z2")
DEFAULT_POINTS = pd.DataFrame(
    {
        "z1": [0.0, 1.0, 0.0, -2.0, 4.0, 0.0],
        "z2": [0.0, 0.0, -1.0, 0.0, 0.0, 4.0],
    }
)
MAX_POINTS = 24
# Nearest-neighbour upscaling: the browser would blur an 8x8 image stretched to display size.
IMAGE_UPSCALE = 12
EDITOR_KEY = "points"
MODEL_NAME = "digits-2d"
SCALES_COLUMN = "ScaLES"

INTRO = (
    "**ScaLES** (Ronen et al., 2024) scores a latent point z by −½ log det(JᵀJ), where J is "
    "the Jacobian, with respect to z, of the decoder's output distribution (here the 64 pixel "
    "probabilities of an 8x8 image). It is proposed as a measure of how realistic the decodes "
    "of a region are: higher means a more realistic region. Below it is computed exactly "
    "(automatic differentiation, float64) for the points in the table, beside two baselines: "
    "the log-probability of each point's most likely decode and the prior log-density.\n\n"
    "Read the far points with care: on this small pixel model the decoder saturates away "
    "from the data (pixel probabilities near 0 or 1, so p(1-p) is tiny), which shrinks the "
    "Jacobian of the output distribution and *raises* ScaLES there; the default points at "
    "radius 4 show it."
)


@st.cache_resource
def get_model() -> VAEModel:
    """The built-in digits-2d model (its decoder is copied to float64 when scoring)."""
    return load_model(MODEL_NAME)


def points_from_table(table: pd.DataFrame) -> torch.Tensor:
    """The edited table as an `n x 2` float64 tensor.

    Raises:
        ValueError: the table is empty, too long, or holds a cell that is not a finite number.
    """
    if table.empty:
        raise ValueError("The table is empty: add at least one latent point.")
    if len(table) > MAX_POINTS:
        raise ValueError(f"At most {MAX_POINTS} points, please; the table has {len(table)}.")
    values = table[list(COLUMNS)].apply(pd.to_numeric, errors="coerce").astype(float)
    bad = ~np.isfinite(values.to_numpy()).all(axis=1)
    if bad.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad))
        raise ValueError(
            f"Every z1 and z2 must be a finite number; row(s) {rows} hold an empty cell, "
            "text, NaN or infinity. Fix or delete those rows."
        )
    return torch.tensor(values.to_numpy(), dtype=torch.float64)


@st.cache_data
def score_points(points: tuple[tuple[float, float], ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """Scores of each point and its decoded pixel probabilities (`n x 8 x 8`)."""
    model = get_model()
    z = torch.tensor(points, dtype=torch.float64)
    decoder = model.decoder_for(z)
    images = np.stack(model.decode(z.float()))
    table = pd.DataFrame(
        {
            "point": np.arange(1, len(points) + 1),
            "z1": z[:, 0].numpy(),
            "z2": z[:, 1].numpy(),
            "|z|": z.norm(dim=1).numpy(),
            SCALES_COLUMN: scales(decoder, z, likelihood="bernoulli").numpy(),
            "log p(argmax decode)": likelihood(decoder, z, likelihood="bernoulli").numpy(),
            "log N(z; 0, I)": prior_logpdf(z).numpy(),
        }
    )
    return table, images


def show_model(model: VAEModel) -> None:
    """The model's description and its measured training metrics, from its manifest."""
    manifest = model.manifest
    held = manifest["metrics"]["held_out"]
    dataset = manifest["dataset"]
    training = manifest["training"]
    st.subheader("The model")
    st.markdown(
        f"A VAE with a {model.latent_dim}-D latent and prior N(0, I), trained on "
        f"scikit-learn's 8x8 digits ({dataset['n_train']} training images, "
        f"{dataset['n_held_out']} held out); decoder `{manifest['decoder'].architecture}` "
        f"{dict(manifest['decoder'].params)}. Values are nats per image."
    )
    cols = st.columns(4)
    cols[0].metric("Held-out ELBO", f"{held['elbo']:.2f}")
    cols[1].metric("Held-out reconstruction BCE", f"{held['bce']:.2f}")
    cols[2].metric(
        "Held-out BCE of the mean image",
        f"{manifest['metrics']['held_out_bce_mean_image_baseline']:.2f}",
    )
    cols[3].metric("Reconstructions classified correctly", f"{held['reconstruction_accuracy']:.1%}")
    st.caption(
        f"Seed {training['seed']}, {training['epochs']} epochs, torch "
        f"{training['torch_version']}; trained by `{training['command']}`."
    )


def show_decodes(table: pd.DataFrame, images: np.ndarray) -> None:
    """Each point's decoded image (brightness = pixel probability)."""
    big = [np.kron(image, np.ones((IMAGE_UPSCALE, IMAGE_UPSCALE))) for image in images]
    captions = [
        f"#{row.point}  ScaLES {getattr(row, SCALES_COLUMN):.2f}"
        for row in table.itertuples(index=False)
    ]
    st.image(big, caption=captions, clamp=True)


def main() -> None:
    """Render the page."""
    st.set_page_config(page_title="scales-viz", layout="wide")
    st.title("ScaLES on the digits-2d model")
    st.markdown(INTRO)
    try:
        model = get_model()
    except ScalesVizError as exc:
        st.error(str(exc))
        st.stop()
    st.subheader("Latent points")
    st.markdown(
        "Edit the points, or add and delete rows. The prior is N(0, I), so points at "
        "radius 4 lie far outside it."
    )
    config = {name: st.column_config.NumberColumn(name, format="%.3f") for name in COLUMNS}
    edited = st.data_editor(
        DEFAULT_POINTS, key=EDITOR_KEY, num_rows="dynamic", hide_index=True, column_config=config
    )
    try:
        z = points_from_table(edited)
        table, images = score_points(tuple((float(a), float(b)) for a, b in z.tolist()))
    except (ValueError, TypeError) as exc:
        st.error(str(exc))
    else:
        st.subheader("Scores and decodes")
        st.dataframe(table, hide_index=True)
        show_decodes(table, images)
    show_model(model)


main()
