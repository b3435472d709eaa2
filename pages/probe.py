"""Probe page: a student sets a 3x3 trigger cell by cell (or picks one from the census or the 51
canonical patterns) and sees at once its ASR on the run's model and on every saved defended model,
stamped images with the predictions, and where it sits among MESA's samples and the baseline's triggers."""
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from mesa.lab.storage import artifacts
from mesa.lab.pipeline.probe import BACKDOORED
from mesa.lab.pipeline.projection import pca_projector
from mesa.method.registry import is_per_trigger
from mesa.method.triggers import canonical_patterns, parse_trigger
from ui.census_view import answer_of, census_trace, censuses, label, probe_of
from ui.common import active_run, image_grid, mtime, run, trigger_hover, trigger_image, trigger_sources
from ui.charts import points_by_source
from ui.entry import through_app
from ui.probe_cells import CELLS, K, WHITE, cells_of, colours, edited, flip, load, picked, spec
from ui.share import choice, stop_page

through_app()

st.title("Probe: would this trigger open the backdoor?")
path = active_run()
if path is None:
    st.info("No saved run: train one on the **Model** page first.")
    st.stop()
r = run(path)


def choose() -> None:
    option = st.session_state["probe-start"]
    load(colours(r.trigger if option == "planted" else parse_trigger(option)))


planted_fits = r.trigger is not None and tuple(r.trigger.shape) == (3, K, K)
LINKED = choice("trigger", spec(colours(r.trigger if planted_fits else parse_trigger("binary:170"))), cells_of)
if "probe-load" in st.session_state:  # a pattern sent here by the Census page
    load(colours(parse_trigger(st.session_state.pop("probe-load"))))
elif CELLS not in st.session_state:
    load(cells_of(st.session_state[LINKED]))
st.session_state[LINKED] = spec(st.session_state[CELLS])  # the link names the trigger being probed

found = censuses(path).get("before")
top = [] if found is None else [found["census"].names[i] for i in found["census"].asr.argsort(descending=True)[:20]]
options = (["planted"] if planted_fits else []) + [f"binary:{n}" for n in canonical_patterns()] + top
asr_of = {} if found is None else dict(zip(found["census"].names, found["census"].asr.tolist()))
editor, answer_col = st.columns([1, 3])
with editor:
    st.selectbox("Start from", options, index=None, key="probe-start", on_change=choose, placeholder="a trigger ...",
                 format_func=lambda o: f"planted ({r.config.get('trigger')})" if o == "planted" else
                 (f"{o}: census ASR {asr_of[o]:.0%}" if o in asr_of else f"{o} (gallery)"))
    colour = st.toggle("Colour per cell", key=choice("colour", not st.session_state[LINKED].startswith("binary:")))
    st.html("<style>" + "".join(  # each cell's button painted in its colour: the grid is the trigger
        f".st-key-probe-flip-{i} button {{background:{c}; color:{c}; border:1px solid #888; height:3rem}}"
        for i, c in enumerate(st.session_state[CELLS])) + "</style>")
    for row in range(K):
        for col, i in zip(st.columns(K), range(row * K, row * K + K)):
            if colour:
                st.session_state[f"probe-rgb-{i}"] = st.session_state[CELLS][i]
                col.color_picker(f"cell {i + 1}", key=f"probe-rgb-{i}", on_change=picked, args=(i,),
                                 label_visibility="collapsed")
            else:
                white = st.session_state[CELLS][i] == WHITE
                col.button("white" if white else "black", key=f"probe-flip-{i}", on_click=flip, args=(i,), width="stretch")
    trigger = edited()
    st.image(trigger_image(trigger, 120), caption="the trigger")

probe = probe_of(path)
answer, took = answer_of(path, trigger)
names = r.config["classes"]
with answer_col:
    st.markdown(f"**ASR on {len(probe.labels)} held-out images** (stamped at random places; answered in "
                f"{took * 1000:.0f} ms). Target class: **{names[probe.target]}**.")
    methods, items = list(artifacts.load_defenses(path)), list(answer.asr.items())
    per_row = len(items) if len(items) <= 4 else 3  # rows of three when the defenses are many: labels stay whole
    for row in range(0, len(items), per_row):
        for col, (model, asr) in zip(st.columns(per_row), items[row:row + per_row]):
            col.metric("backdoored model" if model == BACKDOORED else label(artifacts.method_file(model), methods),
                       f"{asr:.0%}", help=f"with no trigger at all {probe.no_trigger[model]:.1%} already go to the target")
    if unkept := [m for m in methods if is_per_trigger(m) and f"{m}-1" not in answer.asr]:
        st.caption(f"{', '.join(unkept)}: saved before its defended copies were kept, so not probed here "
                   f"(run that defense again to probe them).")
    model = st.segmented_control("Predictions of", list(answer.predictions),
                                 key=choice("predictions", BACKDOORED, list(answer.predictions))) or BACKDOORED
    st.image(image_grid(answer.examples, 88), width=88,
             caption=[f"{names[y]} → {names[p]}" for y, p in zip(answer.labels, answer.predictions[model])])


@st.cache_resource(show_spinner="Projecting triggers ...", max_entries=4)
def trigger_map(run_path: str, stamp: float):
    """The run's triggers (MESA samples, pixel-SGD, original, the census) on a PCA map that can place more."""
    sources = [s for s in trigger_sources(run_path, patches=True) if s[1].shape[-1] == K]
    census = censuses(run_path).get("before")
    if census is not None and census["census"].triggers.shape[-1] == K:
        sources.insert(0, ("census", census["census"].triggers, census["census"].asr))
    if sum(len(t) for _, t, _ in sources) < 2:
        return None, None
    triggers = torch.cat([t for _, t, _ in sources])
    project = pca_projector(triggers)
    rows = pd.DataFrame([{"source": name, "index": i, "asr": float(asr[i]) if asr is not None else float("nan")}
                         for name, t, asr in sources for i in range(len(t))])
    xy = project(triggers)
    return rows.assign(x=xy[:, 0], y=xy[:, 1], trigger=[trigger_hover(t) for t in triggers]), project


df, project = trigger_map(str(path), mtime(Path(path) / artifacts.FOLDER))
if df is None:
    st.info("Run a MESA search (and the pixel-SGD baseline) on the **MESA** page to see the trigger on the map.")
    stop_page()
here = project(trigger[None])[0]
traces = points_by_source(df[df["source"] != "census"], ["source", "asr", "trigger"],
                          "%{customdata[2]}<br>%{customdata[0]}<br>ASR %{customdata[1]:.1%}<extra></extra>")
if (df["source"] == "census").any():  # the census under the run's own triggers, coloured by ASR
    traces.insert(0, census_trace(df[df["source"] == "census"]))
traces.append(go.Scatter(x=[here[0]], y=[here[1]], mode="markers", name="probe", hoverinfo="skip",
                         marker=dict(symbol="star", size=22, color="black", line=dict(width=2, color="white"))))
fig = go.Figure(traces, layout=dict(height=480, title=dict(text="Trigger space (PCA of the pixels): the probe is the star"),
                                    margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.15)))
st.plotly_chart(fig, key="probe-map")
