"""The least a Streamlit page with one Plotly scatter can do (bench_projection's floor).

No scales-viz import, no model: a title and a 2000-point scatter with a colour bar, the size
of a built-in model's Projection map. Its first paint on a fresh server and a new browser is
the floor that the real Projection view's first paint is compared with.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.title("Floor: one Plotly scatter")
xy = np.random.default_rng(0).normal(size=(2000, 2))
marker = {"color": xy[:, 0], "colorscale": "Viridis", "showscale": True, "size": 5}
st.plotly_chart(go.Figure(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", marker=marker)))
st.caption("Lasso or box-select points")
