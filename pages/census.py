"""Census page: the ASR of every trigger of a family (all 512 black-white 3x3 patterns) on the run's
model, before and after each saved defense, side by side: what each defense leaves open, not just
the planted trigger. Hover a pattern for its ASR; click it for its ASR everywhere and stamped examples."""
import pandas as pd
import streamlit as st

from mesa.lab.storage.artifacts import load_defenses, method_file
from mesa.method.census import FAMILIES, CensusConfig
from mesa.lab.jobs.tasks import census_work
from mesa.lab.pipeline.probe import BACKDOORED, ask, kept_defenses
from mesa.method.triggers import parse_trigger
from ui.census_view import census_figure, censuses, counts, default_tags, label, probe_of
from ui.coverage_view import MARK_LEGEND, mesa_hits
from ui.common import active_run, image_grid, job_panel, run, submit, trigger_image
from ui.entry import through_app
from ui.share import choice, stop_page

through_app()

PERCENT = {c: st.column_config.NumberColumn(format="percent") for c in ("worst ASR", "planted ASR", "closure")}

st.title("Census: every trigger, before and after")
path = active_run()
if path is None:
    st.info("No saved run: train one on the **Model** page first.")
    st.stop()
r = run(path)
methods = list(load_defenses(path))
st.caption("A backdoor answers to a *distribution* of triggers, not just the planted one. The census stamps every "
           "3x3 black-white pattern at random places on held-out images and measures its attack success rate (ASR); "
           "a pattern is **open** when ASR ≥ 50%. Each icon is framed in its ASR colour; the planted trigger is "
           "boxed in blue.")
families = [f for f in FAMILIES if censuses(path, f)] or ["binary"]
family = (st.segmented_control("Family", families, key=choice("family", families[0], families))
          if len(families) > 1 else None) or families[0]
found = censuses(path, family)
missing = [m for m in kept_defenses(path) if method_file(m) not in found]
if not found or missing:
    what = "No census saved for this run yet." if not found else f"No census yet of: {', '.join(missing)}."
    st.info(f"{what} Taking one costs about 10-30 s per model on 2 CPU cores (512 patterns x 256 images).")
    if st.button("Take the census", type="primary", icon=":material/play_arrow:"):
        submit("census", f"census of {path.name}", census_work(path, CensusConfig(family=family)), run_path=path)
job_panel("census", run_path=str(path))
if not found:
    stop_page()

shown = st.multiselect("Censuses shown", list(found), key=choice("shown", default_tags(found), list(found)),
                       format_func=lambda t: label(t, methods))
st.dataframe(pd.DataFrame(counts(found, shown, methods)), hide_index=True, column_config=PERCENT)
planted = r.config.get("trigger")
PICK = choice("pattern", "", {n for c in found.values() for n in c["census"].names})  # the pattern clicked
picked = st.session_state[PICK]
hits = mesa_hits(path, family)
if hits:
    st.caption(f"{MARK_LEGEND} ({len(hits)} of them; the MESA page has each beta's coverage).")
new_pick = None
for start in range(0, len(shown), 2):
    for col, tag in zip(st.columns(2), shown[start:start + 2]):
        s = found[tag]["summary"]
        col.markdown(f"**{label(tag, methods)}**: {s.get('open', 0)} of {s['triggers']} open, "
                     f"worst `{s.get('worst_trigger')}` {s.get('worst_asr', 0):.0%}")
        key = f"census-{family}-{tag}"
        event = col.plotly_chart(census_figure(path, tag, planted, picked, family, hits),
                                 key=key, on_select="rerun", selection_mode="points")
        points = (event or {}).get("selection", {}).get("points", []) if event else []
        name = points[0]["customdata"][0] if points else None
        if name and name != st.session_state.get(f"seen-{key}"):
            new_pick = name
        st.session_state[f"seen-{key}"] = name
if new_pick and new_pick != picked:
    st.session_state[PICK] = new_pick
    st.rerun()
if planted and not any(planted in found[t]["census"].names for t in shown):
    st.caption(f"The planted trigger `{planted}` is not in this family; its ASR is in the table.")

if not picked:
    st.caption("Click a pattern to see its ASR in every census and the images it is stamped on.")
    stop_page()
st.subheader(f"Pattern `{picked}`")
trigger = parse_trigger(picked)
left, right = st.columns([1, 4])
left.image(trigger_image(trigger, 96))
if left.button("Probe it", icon=":material/experiment:"):
    st.session_state["probe-load"] = picked
    st.switch_page("pages/probe.py")
rates = {label(t, methods): found[t]["census"].asr[found[t]["census"].names.index(picked)].item()
         for t in shown if picked in found[t]["census"].names}
right.dataframe(pd.DataFrame([rates]), hide_index=True,
                column_config={c: st.column_config.NumberColumn(format="percent") for c in rates})
answer = ask(probe_of(path), trigger)
names = r.config["classes"]
for model, predictions in answer.predictions.items():
    right.markdown(f"**{'backdoored model' if model == BACKDOORED else 'after ' + model}**: "
                   f"ASR {answer.asr[model]:.0%} on the probe's {len(probe_of(path).labels)} held-out images")
    right.image(image_grid(answer.examples, 80), width=80,
                caption=[f"{names[y]} → {names[p]}" for y, p in zip(answer.labels, predictions)])
