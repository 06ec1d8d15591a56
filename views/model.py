"""Model view: the model card, decodings of prior samples, and score distributions."""

from __future__ import annotations

import streamlit as st

from scales_viz.evaluation import Evaluation, evaluate_model
from scales_viz.figures.scores import plot_score_distributions
from ui.cache import cached
from ui.render import INVALID_MARK, VALID_MARK, render_grid
from ui.state import current_model

PRIOR_SAMPLES = 12
GROUP_SIZES = (100, 200, 500)


def main() -> None:
    """Render the view."""
    model = current_model()
    if model is None:
        st.stop()
    manifest = model.manifest
    st.title(f"Model: {model.name}")
    st.markdown(manifest.get("description", ""))
    cols = st.columns(4)
    cols[0].metric("Latent dimension", model.latent_dim)
    cols[1].metric("Prior scale", f"{model.prior_scale:g}")
    cols[2].metric("Likelihood", model.likelihood)
    n_train = manifest.get("dataset", {}).get("n_train")
    cols[3].metric("Training examples", f"{n_train:,}" if isinstance(n_train, int) else "n/a")
    card = model.directory / "README.md" if model.directory else None
    with st.expander("Model card (measured numbers)"):
        if card is not None and card.is_file():
            st.markdown(card.read_text(encoding="utf-8"))
        else:
            st.info(
                "This model has no card here: run `scales-viz evaluate NAME` (built-ins) or "
                "`scales-viz evaluate NAME --out DIR` (other models); the live numbers below "
                "are measured the same way."
            )

    st.subheader("Decodings of prior samples")
    seed = int(st.number_input("Sample seed", 0, 10_000, 0, key="model_prior_seed"))
    objects = model.decode(model.sample_prior(PRIOR_SAMPLES, seed=seed))
    valid = model.validity(objects)
    captions = [VALID_MARK if ok else INVALID_MARK for ok in valid]
    st.caption(f"{int(valid.sum())} of {len(valid)} valid (argmax / mean decoding).")
    render_grid(model, objects, captions, columns=6 if model.render == "image" else 4)

    st.subheader("Scores of data, prior and far latents")
    st.markdown(
        "The ScaLES paper's protocol: encoded data latents, prior samples and samples at 5x "
        "the prior scale, each labelled by the validity of its decoding; the AUROC says how "
        "well each score separates valid from invalid decodings (0.5 = chance)."
    )
    size = st.selectbox("Points per group", GROUP_SIZES, index=1, key="model_group_size")
    evaluation: Evaluation = cached(
        "evaluation",
        (model.name, size),
        lambda progress: evaluate_model(
            model,
            group_size=size,
            progress=lambda stage, fraction: progress(round(100 * fraction), 100),
        ),
        label="Scoring data, prior and far latents",
    )
    cols = st.columns(4)
    for col, (name, value) in zip(cols, evaluation.auroc.items(), strict=True):
        col.metric(f"AUROC {name}", f"{value:.3f}")
    st.caption(
        "Valid: "
        + ", ".join(f"{g} {v:.0%}" for g, v in evaluation.validity.items())
        + ". Seconds: "
        + ", ".join(f"{k} {v:.2f}" for k, v in evaluation.seconds.items())
    )
    st.plotly_chart(plot_score_distributions(evaluation), key="model_distributions")


main()
