"""Distributions of ScaLES and the baselines over data, prior and far latents."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scales_viz.evaluation import GROUPS, SCORE_LABELS, SCORES, Evaluation

__all__ = ["ScoreDistributionInfo", "plot_score_distributions"]

LOG = logging.getLogger(__name__)
GROUP_COLOURS = {"data": "#1f77b4", "prior": "#2ca02c", "far": "#d62728"}


@dataclass(frozen=True)
class ScoreDistributionInfo:
    """Per score: finite values of each group, and the score's validity AUROC.

    Attributes:
        values: score -> group -> float32 array of finite values.
        auroc: score -> AUROC (NaN if undefined).
        title: figure title.
    """

    values: dict[str, dict[str, np.ndarray]]
    auroc: dict[str, float]
    title: str


def _get_score_distribution_info(evaluation: Evaluation) -> ScoreDistributionInfo:
    raw = evaluation.raw
    values: dict[str, dict[str, np.ndarray]] = {}
    for score in SCORES:
        column = np.asarray(raw.get(score, np.zeros(0)), dtype=np.float64)
        groups = np.asarray(raw.get("group", np.zeros(0, dtype=str)))
        values[score] = {
            group: column[(groups == group) & np.isfinite(column)].astype(np.float32)
            for group in GROUPS
        }
    if not any(v.size for per in values.values() for v in per.values()):
        LOG.warning("score distributions: the evaluation holds no per-point values")
    return ScoreDistributionInfo(
        values=values,
        auroc=dict(evaluation.auroc),
        title=f"Scores of data, prior and far latents ({evaluation.model})",
    )


def _build_score_distribution_figure(info: ScoreDistributionInfo) -> go.Figure:
    titles = [
        f"{SCORE_LABELS[s]} (validity AUROC {info.auroc.get(s, float('nan')):.3f})" for s in SCORES
    ]
    fig = make_subplots(rows=2, cols=2, subplot_titles=titles)
    for k, score in enumerate(SCORES):
        row, col = divmod(k, 2)
        for group in GROUPS:
            fig.add_trace(
                go.Histogram(
                    x=info.values[score][group],
                    name=group,
                    legendgroup=group,
                    showlegend=k == 0,
                    marker={"color": GROUP_COLOURS[group]},
                    opacity=0.6,
                    nbinsx=40,
                ),
                row=row + 1,
                col=col + 1,
            )
    fig.update_layout(barmode="overlay", title={"text": info.title}, height=560)
    return fig


def plot_score_distributions(evaluation: Evaluation) -> go.Figure:
    """Overlaid histograms of each score for the data, prior and far groups."""
    return _build_score_distribution_figure(_get_score_distribution_info(evaluation))
