"""Gallery page: the triggers themselves, enlarged with crisp pixels, per source and sorted by ASR,
with the spread of per-trigger ASR per source."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui.common import active_run, trigger_image, trigger_sources
from ui.entry import through_app
from ui.share import choice

through_app()

st.title("Trigger gallery")
path = active_run()
if path is None:
    st.info("No saved run: train one on the **Model** page first.")
    st.stop()
sources = trigger_sources(path)
if len(sources) <= 1:
    st.info("Only the original trigger so far: run a MESA search (and the pixel-SGD baseline) on the **MESA** page.")

c1, c2, c3 = st.columns(3)
ORDERS = ["highest ASR first", "lowest ASR first", "as sampled"]
order = c1.radio("Order", ORDERS, horizontal=True, key=choice("order", ORDERS[0], ORDERS))
count = c2.slider("Triggers per source", 8, 256, step=8, key=choice("count", 48, range(8, 257)))
size = c3.slider("Cell size (px)", 24, 96, step=8, key=choice("size", 48, range(24, 97)))

for name, triggers, asr in sources:
    idx = list(range(len(triggers)))
    if asr is not None and order != "as sampled":
        idx = asr.argsort(descending=order == "highest ASR first").tolist()
    idx = idx[:count]
    st.markdown(f"**{name}**: {len(triggers)} trigger(s)"
                + (f", mean ASR {asr.mean():.1%}, {(asr > 0.5).float().mean():.0%} above 50%" if asr is not None else ""))
    per_class = triggers.shape[1] == 4  # full-image masks and patterns, one per class, each toward its own
    shown = max(size, 2 * triggers.shape[-1]) if per_class else size  # every pixel of a full image visible
    st.image([trigger_image(triggers[i], shown) for i in idx], width=shown, caption=[
        (f"class {i}: " if per_class else "") + (f"{asr[i]:.0%}" if asr is not None else "") for i in idx])

rows = [{"source": name, "asr": a} for name, _, asr in sources if asr is not None and len(asr) > 1 for a in asr.tolist()]
if rows:
    st.subheader("Per-trigger ASR")
    fig = go.Figure([go.Histogram(x=g["asr"].to_numpy(), name=str(name), nbinsx=30, opacity=0.6)
                     for name, g in pd.DataFrame(rows).groupby("source", sort=False)],
                    layout=dict(barmode="overlay", height=340, xaxis=dict(range=[0, 1], title=dict(text="attack success rate")),
                                yaxis=dict(title=dict(text="count")), legend=dict(title=dict(text="source"))))
    st.plotly_chart(fig, key="asr-histogram")
