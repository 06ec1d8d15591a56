"""Model view: the model card, decodings of prior samples, and score distributions."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from scales_viz.evaluation import (
    Evaluation,
    card_record,
    contrast_records,
    evaluate_model,
    family_rows,
    scales_caveat,
)
from scales_viz.figures.scores import plot_score_distributions
from scales_viz.models import VAEModel, list_models
from scales_viz.models.registry import model_dir
from scales_viz_app.ui.cache import cached
from scales_viz_app.ui.render import INVALID_MARK, VALID_MARK, render_grid
from scales_viz_app.ui.state import current_model, get_model

PRIOR_SAMPLES = 12
PRIOR = "prior samples"
NEAR_DATA = "near the data"
#: Below this share of valid prior decodings, the view points to "near the data".
FEW_VALID = 0.25


def _decoding_latents(model: VAEModel, source: str, seed: int, spread: float) -> torch.Tensor:
    """PRIOR_SAMPLES latents: prior samples, or random reference data latents plus noise of
    `spread` prior scales (seeded)."""
    if source == PRIOR:
        return model.sample_prior(PRIOR_SAMPLES, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    data = model.data_latents
    rows = torch.randperm(data.shape[0], generator=generator)[:PRIOR_SAMPLES]
    noise = torch.randn(len(rows), data.shape[1], generator=generator)
    return data[rows] + spread * model.prior_scale * noise


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

    measured = card_record(model_dir(model.name)) if model.directory else {}
    caveat = scales_caveat(measured) if measured else None
    if caveat:
        st.warning(caveat)

    st.subheader("Decodings of prior samples, and near the data")
    cols = st.columns([2, 1, 2])
    source = cols[0].radio(
        "Latents",
        [PRIOR, NEAR_DATA],
        horizontal=True,
        key="model_decode_source",
        help="Prior samples: what the model makes of N(0, s^2 I). Near the data: encoded "
        "data latents moved by Gaussian noise of the spread below.",
    )
    seed = int(cols[1].number_input("Sample seed", 0, 10_000, 0, key="model_prior_seed"))
    spread = cols[2].slider(
        "Spread around the data (x prior scale)",
        0.0,
        1.0,
        0.1,
        0.05,
        key="model_near_spread",
        disabled=source != NEAR_DATA,
    )
    z = _decoding_latents(model, source, seed, float(spread))
    objects = model.decode(z)
    valid = model.validity(objects)
    captions = [VALID_MARK if ok else INVALID_MARK for ok in valid]
    st.caption(f"{int(valid.sum())} of {len(valid)} valid (argmax / mean decoding).")
    if source == PRIOR and valid.mean() < FEW_VALID:
        st.info(
            "Few prior samples of this model decode valid: its data fill a small part of the "
            "prior (the card's validity table measures it on 500 samples). Pick **near the "
            "data** to see what it makes of latents around encoded data, and how validity "
            "falls as they move away."
        )
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
            reconstruction=False,
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
    _families(model, evaluation)


def _families(model: VAEModel, evaluation: Evaluation) -> None:
    """The decoder-family comparison: this task's built-ins (their cards) and registered
    models of the task (measured live on request)."""
    task = model.manifest.get("task")
    records = []
    builtins = [info for info in list_models() if info.task == task and info.available]
    for info in builtins:
        card = (
            evaluation.to_dict() if info.name == model.name else card_record(model_dir(info.name))
        )
        if card:
            records.append((info.name, dict(get_model(info.name).manifest), card))
    if model.name not in {info.name for info in builtins}:  # a registered model, measured live
        records.append((model.name, dict(model.manifest), evaluation.to_dict()))
    for info in builtins:  # measured contrasts kept beside the built-ins (not shipped)
        records += contrast_records(model_dir(info.name))
    if len(records) < 2:
        return
    st.subheader("Decoder families: does ScaLES apply to my decoder?")
    st.markdown(
        "ScaLES differentiates the map from `z` to the decoder's output distribution. When a "
        "decoder feeds back its own **softmax**, that map is smooth and the Jacobian sees how "
        "every token depends on `z`, through the latent context and through the tokens before "
        "it. When it feeds back its **argmax** (greedy autoregressive decoding), the fed-back "
        "tokens are locally constant: the Jacobian sees only the path through the latent "
        "context, and the score loses much of its signal. The models of this task below, "
        "measured with the same protocol (the current model live, the others from their "
        "cards; a registered model, such as the ScaLES authors' checkpoint, joins the table "
        "when it is the model picked in the sidebar):"
    )
    frame = pd.DataFrame(family_rows(records)).set_index("model")
    st.dataframe(frame.style.format(precision=3, na_rep="n/a"), key="model_families")


main()
