"""Landing page: what a backdoor is, what MESA does, the data available, and the one-click demo."""
from dataclasses import replace
from pathlib import Path

import streamlit as st

from mesa.lab.pipeline import presets
from mesa.data import cache_root, is_local
from mesa.errors import MesaError
from mesa.lab.jobs.tasks import pipeline_work
from mesa.lab.jobs.queue import job_queue
from mesa.lab.storage.runs import list_runs, runs_root
from mesa.method.registry import is_per_trigger
from ui.common import events_frame, job_panel, mosaic, submit
from ui.charts import metric_charts
from ui.entry import through_app

through_app()

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO = presets.CLASSROOM_DEMO


def live_demo():
    """The same demo on real CIFAR-10 images, from the shipped clean base: the data is the user's to name."""
    preset = presets.builtin()[presets.LIVE_DEMO]
    with st.expander("Live demo on real CIFAR-10 images"):
        st.markdown(preset["description"])
        spec = st.text_input("CIFAR-10 data", value="cifar10" if is_local("cifar10") else "",
                             placeholder="cifar10 (downloads it) or folder:PATH (train/ and test/ class folders)")
        if st.button("Run the live demo", icon=":material/play_arrow:",
                     disabled=not spec.strip() or bool(job_queue().active())):
            try:
                attack = replace(presets.attack_config(preset), data=presets.live_data(spec.strip()))
            except MesaError as e:
                st.error(str(e))
                return
            submit("demo", "live demo on CIFAR-10", pipeline_work(
                attack, presets.search_config(preset), presets.defense_configs(preset),
                presets.baseline_config(preset), presets.census_config(preset)))


st.title("MESA Lab")
st.markdown(
    """
A **backdoored** classifier behaves normally on clean images but predicts an attacker's *target
class* whenever a small *trigger* patch is stamped anywhere on an image. **MESA** (max-entropy
staircase approximator; Qiao, Yang & Li, NeurIPS 2019) defends by learning the whole
*distribution* of triggers that fire the backdoor, then retraining the model on images stamped
with sampled triggers while keeping their true labels: the backdoor is unlearned.
"""
)
st.image(str(ASSETS / "mesa-overview.svg"), caption="Attack, MESA search, defense", width="stretch")
st.info((ASSETS / "overview-findings.md").read_text(), icon=":material/photo_library:")

left, right = st.columns(2)
with left:
    st.subheader("Data on this machine")
    tv = cache_root() / "torchvision"
    st.markdown(
        f"""
- **synthetic**: always available (ten shape classes drawn on the fly, no download).
- **cifar10**: {"present" if (tv / "cifar-10-batches-py").is_dir() else f"not downloaded: put `cifar-10-batches-py/` in `{tv}` or let the first attack download it"}.
- **cifar100**: {"present" if (tv / "cifar-100-python").is_dir() else f"not downloaded: put `cifar-100-python/` in `{tv}` or let the first attack download it"}.
- **folder:PATH**: any image folder with `train/<class>/*` and `test/<class>/*`.
- **cifar10-sample**: always available: 2,000 real CIFAR-10 test images that ship with the app, to import
  a CIFAR-10 model and search, defend and probe it with no download (no training images: no attack).
"""
    )
    runs = list_runs()
    st.markdown(f"**{len(runs)}** saved run(s) under `{runs_root()}`." if runs else
                "No runs yet: run the demo, or train one on the **Model** page.")
with right:
    st.subheader("Full demo")
    preset = presets.builtin()[DEMO]
    st.markdown(f"{preset['description']}  \nAttack (synthetic, small CNN, {preset['attack']['epochs']} epochs) "
                f"→ MESA search (β = {', '.join(map(str, preset['search']['betas']))}, "
                f"{preset['search']['epochs']} epochs each) → pixel-SGD baseline → defenses "
                f"({', '.join(preset['defense']['methods'])}; {preset['defense']['epochs']} epochs each), each with "
                "the census of the 512 black-white 3x3 triggers it leaves open.")
    if st.button("Run the full demo", type="primary", icon=":material/play_arrow:", disabled=bool(job_queue().active())):
        submit("demo", "full demo", pipeline_work(presets.attack_config(preset), presets.search_config(preset),
                                                  presets.defense_configs(preset), presets.baseline_config(preset),
                                                  presets.census_config(preset)))
    live_demo()
    if job_queue().active():
        st.caption("A job is running: the queue runs one at a time.")
    st.page_link("pages/cifar10.py", icon=":material/table_chart:",
                 label="On the embedded data every retraining closes the backdoor alike; on real CIFAR-10 the "
                       "census tells MESA from the single reversed trigger")


def show_demo(job):
    """Each stage as it goes: training curves, search curves with the current samples, defense curves."""
    df = events_frame(job)
    for prefix, metrics in (("train", ["loss", "clean_acc", "asr"]), ("search", ["hinge", "mi", "p_target", "asr"]),
                            ("defend", ["loss", "clean_acc", "asr"])):
        part = df[df["stage"].str.startswith(prefix)]
        if len(part):
            st.markdown(f"**{prefix}**")
            metric_charts(part, metrics, key=f"demo-{prefix}")
    if job.images is not None:
        st.image(mosaic(job.images), caption=f"current trigger samples ({job.images_stage})")
    if job.done and isinstance(job.result, dict):
        for d in job.result.get("defenses", []):
            st.success(defense_line(d))


def defense_line(d: dict) -> str:
    """One defense's outcome: the planted trigger's ASR, clean accuracy, and what the census leaves open."""
    worst = f" (worst restart {d['worst_asr']:.1%})" if is_per_trigger(d["method"]) else ""
    line = (f"{d['method']}: ASR {d['before']['asr']:.1%} → {d['after']['asr']:.1%}{worst}, "
            f"clean accuracy {d['before']['clean_acc']:.1%} → {d['after']['clean_acc']:.1%}")
    census = d.get("census")
    if census:
        line += (f"; triggers that open the backdoor: {census['before']['open']} → {census['after']['open']} "
                 f"of {census['after']['triggers']} (highest ASR {census['after']['worst_asr']:.0%})")
    return line


job_panel("demo", show_demo)
