"""Trigger-space page: every trigger of the run (MESA samples of each beta, pixel-SGD, original) as
one point of a 2-D projection; select points with the box or lasso to see those triggers."""
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from mesa.lab.storage import artifacts
from mesa.lab.pipeline.projection import METHODS, project_triggers
from ui.census_view import census_source, census_trace
from ui.common import active_run, mtime, trigger_hover, trigger_image, trigger_sources
from ui.charts import points_by_source
from ui.entry import through_app
from ui.share import choice

through_app()

st.title("Trigger space")
path = active_run()
if path is None:
    st.info("No saved run: train one on the **Model** page first.")
    st.stop()


@st.cache_data(show_spinner="Projecting triggers ...", max_entries=16)
def projection(run_path: str, stamp: float, method: str, census: bool = False) -> pd.DataFrame:
    """2-D coordinates of every trigger (flattened pixels), with its source, index and ASR; `stamp` (the
    results' mtime) is part of the cache key, so new results are projected afresh. `census`: the
    census's triggers too, projected with the others."""
    sources = trigger_sources(run_path, patches=True) + (census_source(run_path) if census else [])
    rows = [{"source": name, "index": i, "asr": float(asr[i]) if asr is not None else np.nan,
             "trigger": trigger_hover(t)} for name, triggers, asr in sources for i, t in enumerate(triggers)]
    xy = project_triggers(torch.cat([triggers for _, triggers, _ in sources]), method)
    return pd.DataFrame(rows).assign(x=xy[:, 0], y=xy[:, 1])


def known(asr):
    """An ASR from the chart's custom data; None when the trigger has none (NaN or null)."""
    return asr if isinstance(asr, (int, float)) and asr == asr else None


sources = trigger_sources(path, patches=True)
if len(sources) <= 1:
    st.info("Only the original trigger so far: run a MESA search on the **MESA** page to fill the space.")
    st.stop()
method = st.segmented_control("Projection", METHODS, key=choice("projection", "PCA", METHODS)) or "PCA"
layer = census_source(path)
background = bool(layer) and st.toggle("Census in the background: every pattern, coloured by its ASR on the model",
                                       value=True, key="census-layer")
df = projection(str(path), mtime(Path(path) / artifacts.FOLDER), method, background)
traces = points_by_source(df[df["source"] != "census"], ["source", "index", "asr", "trigger"],
                          "%{customdata[3]}<br>%{customdata[0]} #%{customdata[1]}<br>ASR %{customdata[2]:.1%}<extra></extra>")
for trace in traces:
    if trace.name == "original":
        trace.marker.update(size=16, line=dict(width=2, color="black"))
if background:  # drawn first, under the run's own triggers
    traces.insert(0, census_trace(df[df["source"] == "census"]))
fig = go.Figure(traces, layout=dict(height=560, dragmode="lasso", legend=dict(orientation="h", y=-0.12),
                                    margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(title=dict(text="x")),
                                    yaxis=dict(title=dict(text="y"))))
event = st.plotly_chart(fig, key=f"space-{method}", on_select="rerun", selection_mode=("box", "lasso", "points"))

points = (event or {}).get("selection", {}).get("points", []) if event else []
if not points:
    st.caption("Draw a box or lasso around points to see their triggers here.")
else:
    triggers = {name: t for name, t, _ in sources + layer}
    chosen = [(p["customdata"][0], int(p["customdata"][1]), known(p["customdata"][2])) for p in points[:128]]
    chosen.sort(key=lambda c: -1 if c[2] is None else -c[2])
    st.markdown(f"**{len(points)} selected** (showing {len(chosen)}, highest ASR first)")
    st.image([trigger_image(triggers[s][i], 48) for s, i, _ in chosen],
             caption=[s if a is None else f"{s} {a:.0%}" for s, _, a in chosen], width=48)
