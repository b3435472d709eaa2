"""Defense page: retrain the backdoored model with each chosen method (background jobs, one after
another), compare ASR and clean accuracy before/after, and set them beside the paper's numbers."""
import pandas as pd
import streamlit as st

from mesa.lab.storage.artifacts import load_defenses
from mesa.lab.pipeline.offers import defense_offers
from mesa.method import registry
from mesa.method.defense import DefenseConfig
from mesa.lab.jobs.tasks import stage_work
from mesa.lab.sweep.table import PAPER as TABLE_1
from ui.common import active_run, current_preset, events_frame, job_panel, run, submit
from ui.charts import grouped_bars, metric_charts
from ui.census_view import floor_line, floor_of, interval, residual, residual_chart
from ui.entry import through_app
from ui.share import choice

through_app()

PAPER = pd.DataFrame([{"method": "before defense" if m == "before" else m, "mean ASR": v, "worst ASR": TABLE_1["worst"][m]}
                      for m, v in TABLE_1["mean"].items()])  # Qiao et al. 2019, CIFAR-10 ResNet-18, 51 triggers

st.title("Defense: remove the backdoor")
path = active_run()
if path is None:
    st.info("No saved run: train one on the **Model** page first.")
    st.stop()
defense = current_preset()["defense"]
methods, missing = defense_offers(path, run(path).trigger is not None)

c1, c2, c3 = st.columns([3, 1, 1])
usable = [m for m in defense.get("methods", [registry.headline()]) if m in methods and m not in missing]
chosen = c1.multiselect("Methods", methods, key=choice("methods", usable, methods))
epochs = c2.number_input("epochs", 1, 200, key=choice("epochs", int(defense.get("epochs", 3)), range(1, 201)))
ratio = c3.number_input("stamped fraction", 0.0, 1.0, step=0.05, key=choice(
    "ratio", float(defense.get("poison_ratio", DefenseConfig.poison_ratio)), lambda v: 0 <= v <= 1))
for m in chosen:
    if m in missing:
        st.warning(f"{m} {missing[m]}.")
if st.button("Run defenses", type="primary", icon=":material/play_arrow:", disabled=not chosen or any(m in missing for m in chosen)):
    current_preset()["defense"] = {"methods": chosen, "epochs": int(epochs), "poison_ratio": float(ratio)}
    for m in chosen:
        submit("defense", f"defense {m} on {path.name}",
                           stage_work(path, "defense", DefenseConfig(method=m, epochs=int(epochs), poison_ratio=float(ratio))),
                           run_path=path)

job_panel("defense", lambda job: metric_charts(events_frame(job), ["loss", "clean_acc", "asr"], key="defense-live"),
          run_path=str(path))

results = load_defenses(path)
left, right = st.columns([2, 1])
with right:
    st.subheader("Paper (CIFAR-10, ResNet-18)")
    st.dataframe(PAPER, hide_index=True)
    st.plotly_chart(grouped_bars(PAPER.melt("method", var_name="measure", value_name="ASR"), "method", "ASR", "measure"),
                    key="paper-bars")
    st.page_link("pages/cifar10.py", label="The same defenses measured here on real CIFAR-10, with the census",
                 icon=":material/table_chart:")
def with_bounds(long: pd.DataFrame, measure: str, results: dict) -> pd.DataFrame:
    """Each bar's 95% interval (low, high) from the saved result; the bar itself where none was saved."""
    key = {"ASR": "asr_ci", "clean acc": "clean_acc_ci"}[measure]
    cis = [results[m][when.split()[-1]].get(key) or [v, v] for m, when, v in long[["method", "when", measure]].values]
    return long.assign(low=[c[0] for c in cis], high=[c[1] for c in cis])


with left:
    st.subheader("This run")
    if not results:
        st.info("No defense saved for this run yet.")
    else:
        rows = [{"method": m, "ASR before": r["before"].get("asr"), "ASR after": r["after"].get("asr"),
                 "ASR after, 95%": interval(r["after"].get("asr_ci")), "worst ASR": r["worst_asr"], **residual(r),
                 "MESA samples' ASR after": r.get("samples_asr", {}).get("after"),  # the measure with no planted trigger
                 "clean acc before": r["before"]["clean_acc"],
                 "clean acc after": r["after"]["clean_acc"], "seconds": r["seconds"]} for m, r in results.items()]
        table = pd.DataFrame(rows)
        st.dataframe(table, hide_index=True)
        floor = floor_of(path)
        st.caption("The planted trigger's ASR and the residual: of every 3x3 black-white pattern (the census), how many "
                   "still open the backdoor (ASR ≥ 0.5) after each defense, the worst one, and the closure (the share of "
                   "the patterns open before that are closed after)." + (f" Dotted line: the {floor['label']}." if floor else ""))
        for measure in ("ASR", "clean acc"):
            long = table.melt("method", [f"{measure} before", f"{measure} after"], var_name="when", value_name=measure)
            line = floor_line(floor, "asr") if measure == "ASR" else None
            st.plotly_chart(grouped_bars(with_bounds(long, measure, results), "method", measure, "when", y_range=[0, 1],
                                         line=line, error=("low", "high")), key=f"bars-{measure}")
        st.caption("Error bars: 95% Wilson intervals on the held-out images (runs saved before intervals have none).")
        residual_chart(table, floor, "bars-open")

if results:
    st.subheader("Per-epoch curves")
    hist = pd.concat([pd.DataFrame(r["history"]).assign(stage=m) for m, r in results.items() if r.get("history")]
                     or [pd.DataFrame()])
    if len(hist):
        metric_charts(hist, ["asr", "clean_acc", "loss", "stamped_asr"], x="epoch", key="defense-history")
