"""Home view: what ScaLES measures, what each view is for, and where to start."""

from __future__ import annotations

import streamlit as st

from scales_viz_app.ui.pages import TITLES, page
from scales_viz_app.ui.state import MODEL_KEY

VIEWS = (
    (
        "learn",
        "a guided walk on one plane of the expressions model: the "
        "ScaLES field, the validity map, and an optimiser with and without the penalty.",
    ),
    (
        "model",
        "the model card: reconstruction, validity of data, prior and "
        "far samples, how well each score separates valid from invalid decodings (AUROC), and "
        "decoder families compared. Check it before trusting a score on a model.",
    ),
    (
        "slices",
        "ScaLES (or a baseline) over any plane through latent space, "
        "with the validity boundary, objective contours and optimiser runs; click to decode.",
    ),
    (
        "projection",
        "a UMAP map of data, prior and far latents coloured by "
        "any score; lasso points to inspect them.",
    ),
    (
        "optimizers",
        "launch or import latent-space optimisation runs, "
        "with and without a realism penalty, and compare them.",
    ),
    (
        "inspect",
        "the points you picked anywhere: decoded, valid or not, "
        "objective and score side by side (realism against objective).",
    ),
)


def main() -> None:
    """Render the view."""
    st.title("scales-viz: where is a VAE's latent space realistic?")
    st.markdown(
        "Latent-space optimisation searches a VAE's latent space for a point whose decoding "
        "scores well: a molecule, an expression, an image. Optimisers tend to **over-explore**: "
        "they wander where the decoder emits invalid or unrealistic objects. **ScaLES** "
        "(Ronen et al., 2024) scores any latent point from the decoder alone, "
        "`-1/2 log det(J^T J)` with `J` the Jacobian of the decoder's output distribution: "
        "**high ScaLES marks a region where the decoder's outputs are realistic**; adding it "
        "as a penalty keeps an optimiser there."
    )
    model = st.session_state.get(MODEL_KEY, "")
    st.caption(
        f"The sidebar picks the model every view works on (now: `{model}`); each model's "
        "card in the Model view says how far ScaLES can be trusted on it."
    )
    st.subheader("Where to start")
    first, second = st.columns(2)
    with first:
        st.markdown("**New to latent spaces, or teaching?** Walk through Learn, five short steps.")
        st.page_link(page("learn"), label="Open Learn", icon=":material/school:")
    with second:
        st.markdown(
            "**Comparing optimisers?** Launch `gp-ascent` with and without the ScaLES penalty "
            "on Optimisers, then press *Show on Slices* to see both runs on the score map."
        )
        st.page_link(page("optimizers"), label="Open Optimisers", icon=":material/tune:")
    st.subheader("The views")
    for name, what in VIEWS:
        st.page_link(page(name), label=TITLES[name], icon=":material/arrow_forward:")
        st.caption(what)


main()
