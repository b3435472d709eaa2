"""MESA page: search the trigger distribution (one generator per beta) live, the pixel-SGD
baseline, and detection (which class admits a whole distribution of working triggers)."""
import pandas as pd
import streamlit as st

from mesa.method import registry
from mesa.method.detection import DetectionConfig
from mesa.lab.storage.artifacts import load_detection
from mesa.lab.jobs.tasks import stage_work
from mesa.method.search import SearchConfig
from ui.common import (active_run, baseline_results, current_preset, events_frame, job_panel, mosaic, run,
                       search_results, submit)
from ui.charts import grouped_bars, metric_charts
from ui.coverage_view import LOW_COVERAGE, coverage_table
from ui.entry import through_app
from ui.share import choice

through_app()

st.title("MESA: model the trigger distribution")
path = active_run()
if path is None:
    st.info("No saved run: train one on the **Model** page (or run the demo on **Overview**) first.")
    st.stop()
r = run(path)
search = current_preset()["search"]
st.caption(f"Run `{path.name}`: target class {r.target} ({r.config['classes'][r.target]})" if r.target is not None
           else f"Run `{path.name}`: a model trained elsewhere, its backdoor's class unknown: run **Detection** "
                "first; search, baseline and defenses then work toward its suspect.")

TABS, BETAS = ["MESA search", "Baselines", "Detection"], [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
search_tab, baseline_tab, detect_tab = st.tabs(TABS, key=choice("tab", TABS[0], TABS), on_change="rerun")

with search_tab:
    c1, c2, c3, c4 = st.columns(4)
    alpha = c1.number_input("alpha (entropy weight)", 0.0, 10.0, step=0.05,
                            key=choice("alpha", float(search.get("alpha", 0.1)), lambda v: 0 <= v <= 10))
    betas = c2.multiselect("betas (ASR thresholds)", BETAS, key=choice(
        "betas", [b for b in search.get("betas", [0.5, 0.8, 0.9]) if b in BETAS], BETAS))
    epochs = c3.number_input("epochs per beta", 1, 200, key=choice("epochs", int(search.get("epochs", 2)), range(1, 201)))
    samples = c4.number_input("samples kept per beta", 16, 4096, step=16, key=choice("samples", 256, range(16, 4097)))
    if st.button("Run MESA search", type="primary", icon=":material/play_arrow:", disabled=not betas):
        cfg = SearchConfig(betas=sorted(betas), alpha=float(alpha), epochs=int(epochs))
        current_preset()["search"] = {"betas": cfg.betas, "alpha": cfg.alpha, "epochs": cfg.epochs}
        submit("search", f"MESA search β={cfg.betas} on {path.name}",
                           stage_work(path, "search", cfg, num_samples=int(samples)), run_path=path)

    def show_search(job):
        df = events_frame(job)
        last = df.groupby("stage", sort=False).last()
        for stage, row in last.iterrows():
            st.progress(min(1.0, row["step"] / max(row["total"], 1)), text=f"{stage}: step {row['step']}/{row['total']}")
        metric_charts(df, ["hinge", "mi", "p_target", "asr"], key="search-live")
        if job.images is not None:
            st.image(mosaic(job.images), caption=f"current samples of {job.images_stage} (64 fixed noise inputs)")

    job_panel("search", show_search, run_path=str(path))

    found = search_results(path)
    if found is None:
        st.info("No saved search for this run yet.")
    else:
        st.subheader("Saved search")
        columns = ["beta", "mean_asr", "above_half", "final_mi", "steps", "seconds"]
        summary = pd.DataFrame([{k: b.get(k) for k in columns} for b in found["betas"].values()])
        st.dataframe(summary, hide_index=True)
        st.markdown("**Coverage**: the distinct patterns each beta's samples fall on, and the share of the census's "
                    "open set (ASR ≥ 0.5 on this model) they hit. " + LOW_COVERAGE)
        st.dataframe(coverage_table(path), hide_index=True, column_config={
            c: st.column_config.NumberColumn(format="percent") for c in ("coverage", "samples that are open")})
        curves = pd.concat([pd.DataFrame(b["curve"]).assign(stage=f"beta={beta:g}")
                            for beta, b in found["betas"].items() if b["curve"]] or [pd.DataFrame()])
        if len(curves):
            metric_charts(curves, ["hinge", "mi", "p_target", "asr"], key="search-saved")
        for col, (beta, b) in zip(st.columns(len(found["betas"])), found["betas"].items()):
            col.image(mosaic(b["samples"][:64], columns=8), caption=f"β={beta:g}: mean ASR {b['mean_asr']:.1%}")

with baseline_tab:
    st.markdown("What MESA is compared with: methods that reverse **one** trigger (per restart, or per class).")
    reversers = registry.run_by("baseline")
    method = st.segmented_control("Method", reversers, key=choice("reverser", reversers[0], reversers)) or reversers[0]
    entry = registry.inversion(method)
    st.caption(entry.help)
    c1, c2 = st.columns(2)
    settings = {"steps": int(c2.number_input("steps", 10, 5000, 100, 10))}
    if "restarts" in entry.config.__dataclass_fields__:
        settings["restarts"] = int(c1.number_input("restarts", 1, 100, 10))
    if st.button(f"Run {method}", icon=":material/play_arrow:"):
        submit("baseline", f"{method} on {path.name}", stage_work(path, "baseline", entry.config(**settings)),
               run_path=path)
    job_panel("baseline", lambda job: metric_charts(events_frame(job), ["loss", "asr", "mean_attack", "classes_left"],
                                                    key="baseline-live"), run_path=str(path))
    for name in reversers:
        if (base := baseline_results(path, registry.inversion(name).stage)) is not None:
            st.image(mosaic(base["triggers"], columns=10, cell=32),
                     caption=f"{name}: {len(base['triggers'])} triggers, mean ASR {base['mean_asr']:.1%}")

with detect_tab:
    detectors = [n for n, e in registry.inversions().items() if e.detection or e.gives == "generators"]
    det_method = st.segmented_control("Detection by", detectors,
                                      key=choice("detector", detectors[0], detectors)) or detectors[0]
    det_entry = registry.inversion(det_method)
    st.markdown(det_entry.help if det_entry.detection else "A short search toward **every** class: only the "
                "attacked class admits many working triggers.")
    det_epochs = 1 if det_entry.detection else st.number_input("epochs per class", 1, 50, 1)
    if st.button("Run detection", icon=":material/play_arrow:"):
        submit("detection", f"detection ({det_method}) on {path.name}", stage_work(
            path, "detection", DetectionConfig(epochs=int(det_epochs), method=det_method)), run_path=path)
    job_panel("detection", lambda job: metric_charts(events_frame(job), ["asr", "mean_attack"], key="detect-live"),
              run_path=str(path))
    det = load_detection(path)
    if det is not None:
        names = r.config["classes"]
        marked = r.target if r.target is not None else det.get("suspect")
        st.caption(f"The saved detection, by {det.get('config', {}).get('method', 'mesa')}.")
        score = det.get("score", {"key": "mean_asr", "label": "achievable ASR (short search)"})
        evidence = [(det["per_class"], score["key"], score["label"], "detection-bars")]
        if "census_open_per_class" in det:
            counts = [{"class": c, "open": n} for c, n in enumerate(det["census_open_per_class"])]
            evidence.append((counts, "open", f"3x3 patterns with ASR >= 0.5 (of {det['census_triggers']})",
                             "detection-census-bars"))
        for rows, column, label, key in evidence:
            if not rows:
                continue
            df = pd.DataFrame(rows).assign(
                name=lambda d: [f"{c}: {names[c]}" for c in d["class"]],
                role=lambda d: ["attacked" if c == marked else "other" for c in d["class"]])
            df = df[["name", column, "role"]].rename(columns={column: label, "name": "class"})  # one "class" column
            fig = grouped_bars(df, "class", label, "role", height=320,
                               colors={"attacked": "#c0392b", "other": "#7f8c8d"}, barmode="relative")
            st.plotly_chart(fig, key=key)
        if det.get("suspect") is None and "smallest" in det:
            st.markdown(f"No class flagged (anomaly index ≤ 2): the smallest reversed trigger is class {det['smallest']} "
                        f"({names[det['smallest']]}), anomaly index {det['anomaly_index']:.1f}.")
        elif det.get("suspect") is None:
            st.markdown("No suspect class: no pattern opens any class (and no search ran).")
        else:
            verdict = "backdoor detected" if det["backdoor_detected"] else "no clear backdoor"
            index = det.get("census_anomaly_index") if det.get("evidence") == "census" else det.get("anomaly_index")
            st.markdown(f"**Suspect class {det['suspect']}** ({names[det['suspect']]}), evidence: "
                        f"{det.get('evidence', 'search')}" + (f", anomaly index {index:.1f}" if index is not None else "")
                        + f": {verdict}.")
