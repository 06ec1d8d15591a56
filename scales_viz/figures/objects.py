"""Figures of decoded objects: an expression plotted against the task's target."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from scales_viz.models.expressions import (
    OBJECTIVE_GRID,
    TARGET_EXPRESSION,
    evaluate,
    is_valid_expression,
    parse_expression,
)

__all__ = ["plot_expression_fit"]


def plot_expression_fit(text: str, *, height: int = 260) -> go.Figure:
    """The expression `text` and the target ``1/3 + x + sin(x*x)`` over [-10, 10].

    An invalid expression draws the target alone with the title saying so. Values are clipped
    to a band around the target so one exploding term (``exp``) does not flatten the plot.
    """
    target = evaluate(parse_expression(TARGET_EXPRESSION), OBJECTIVE_GRID)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=OBJECTIVE_GRID, y=target, name=f"target {TARGET_EXPRESSION}", mode="lines")
    )
    title = text
    if is_valid_expression(text):
        with np.errstate(all="ignore"):
            values = evaluate(parse_expression(text), OBJECTIVE_GRID)
        span = float(np.ptp(target))
        low, high = float(target.min()) - span, float(target.max()) + span
        shown = np.where(np.isfinite(values), np.clip(values, low, high), np.nan)
        fig.add_trace(go.Scatter(x=OBJECTIVE_GRID, y=shown, name=text, mode="lines"))
    else:
        title = f"{text!r} is not a valid expression"
    fig.update_layout(
        title={"text": title},
        height=height,
        margin={"l": 30, "r": 10, "t": 40, "b": 30},
        legend={"orientation": "h", "y": -0.2},
        xaxis={"title": {"text": "x"}},
    )
    return fig
