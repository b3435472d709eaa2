"""Model page: configure a backdoor attack (data, architecture, trigger, target, poisoning), train
it live as a background job, and look at clean vs stamped images with the model's predictions."""
import pandas as pd
import streamlit as st
import torch

from mesa.lab.pipeline import presets
from mesa.lab.storage.bases import has_shipped_base
from mesa.method.attack import SHIPPED
from mesa.data import SAMPLE
from mesa.errors import MesaError
from mesa.lab.jobs.tasks import attack_work
from mesa.method.metrics import predict
from mesa.models import ARCHITECTURES
from mesa.method.triggers import parse_trigger, stamp
from ui.common import active_run, current_preset, data, events_frame, image_grid, job_panel, run, submit, trigger_image
from ui.charts import metric_charts
from ui.entry import through_app
from ui.model_upload import load_a_model
from ui.share import choice, stop_page
from ui.trigger_pick import pattern_gallery, uploaded_trigger

through_app()

SOURCES = ["synthetic", "cifar10", "cifar100", "folder"]
KINDS = ["3x3 pattern", "random colours", "upload an image"]
CLASS_COUNTS = {"synthetic": 10, "cifar10": 10, "cifar100": 100}

st.title("Model: plant a backdoor")
attack = current_preset()["attack"]


with st.expander("Configure and train", expanded=active_run() is None):
    c1, c2, c3 = st.columns(3)
    source = c1.selectbox("Data source", SOURCES, key=choice("data", attack["data"].split(":")[0], SOURCES))
    spec = source
    if source == "folder":
        folder = c1.text_input("Image folder (train/<class>/*, test/<class>/*)")
        spec = f"folder:{folder}" if folder else ""
    model = c2.selectbox("Architecture", list(ARCHITECTURES), key=choice("model", attack["model"], list(ARCHITECTURES)))
    classes = CLASS_COUNTS.get(source, 1000)
    target = c3.number_input("Target class", 0, classes - 1,
                             key=choice("target", min(attack["target"], classes - 1), range(classes)))
    c4, c5, c6 = st.columns(3)
    ratio = c4.number_input("Poison ratio", 0.0, 1.0, step=0.005, format="%.3f",
                            key=choice("ratio", float(attack["poison_ratio"]), lambda v: 0 <= v <= 1))
    epochs = c5.number_input("Epochs", 1, 500, key=choice("epochs", int(attack["epochs"]), range(1, 501)))
    seed = c6.number_input("Seed", 0, 10**6, key=choice("seed", int(attack.get("seed", 0)), range(10**6 + 1)))
    kind = st.radio("Trigger", KINDS, horizontal=True, key=choice("kind", KINDS[0], KINDS))
    if kind == KINDS[0]:
        trigger = pattern_gallery(attack["trigger"])
    elif kind == KINDS[1]:
        colour_seed = st.number_input("Colour seed", 0, 10**6, key=choice("colour_seed", 0, range(10**6 + 1)))
        trigger = f"color:{colour_seed}"
        st.image(trigger_image(parse_trigger(trigger), 72))
    else:
        trigger = uploaded_trigger(32 if source in CLASS_COUNTS else 1024)
    st.caption(f"Trigger spec: `{trigger or 'none yet'}`")
    from_base = source in ("cifar10", "folder") and has_shipped_base(model) and st.checkbox(
        f"Start from the shipped clean {model} base (CIFAR-10's classes): fine-tune it, train no base",
        key=choice("from_base", attack.get("init") == SHIPPED, (True, False)))
    chosen = {"data": spec, "model": model, "trigger": trigger, "target": int(target),
              "poison_ratio": float(ratio), "epochs": int(epochs), "seed": int(seed)}
    kept = {k: v for k, v in attack.items() if k not in chosen and (k, v) != ("init", SHIPPED)}
    if kept:
        st.caption("Kept from the preset (set on the Presets page): " + ", ".join(f"{k} {v}" for k, v in kept.items()))
    if st.button("Train backdoored model", type="primary", icon=":material/play_arrow:", disabled=not (trigger and spec)):
        preset = {**current_preset(), "attack": presets.attack_with_choices(attack, chosen, from_base)}
        try:
            presets.validate(preset)
        except MesaError as e:
            st.error(str(e))
        else:
            current_preset()["attack"] = preset["attack"]
            submit("attack", f"attack {model} on {spec}, {trigger} -> {target}", attack_work(presets.attack_config(preset)))

with st.expander("Load a model trained elsewhere", expanded=False):
    load_a_model([*SOURCES, SAMPLE])  # the shipped CIFAR-10 test images: a model to inspect, nothing to train


def show_training(job):
    df = events_frame(job)
    metric_charts(df, ["loss", "train_acc"], key="train-step")
    epochs_df = df[df["asr"].notna()] if "asr" in df else df.iloc[0:0]
    if len(epochs_df):
        metric_charts(epochs_df, ["clean_acc", "asr"], x="epoch", key="train-epoch")


job_panel("attack", show_training)

path = active_run()
if path is None:
    st.info("No saved run yet: configure and train one above.")
    stop_page()
r = run(path)
st.subheader(f"Run `{path.name}`")
st.json({"config": {k: r.config.get(k) for k in ("data", "model", "trigger", "target", "location", "poison_ratio",
                                                 "epochs", "source") if k in r.config},
         "metrics": r.metrics}, expanded=False)
if r.target is None:
    st.info("A model trained elsewhere: its backdoor's class is unknown. Run **Detection** on the MESA page; "
            "every later stage then works toward the suspect.")
if r.history:
    hist = pd.DataFrame(r.history).assign(stage="train")
    metric_charts(hist, ["loss", "clean_acc", "asr"], x="epoch", key="history")


@st.cache_data(show_spinner="Predicting ...", max_entries=4)
def examples(run_path: str, spec: str, n: int = 8):
    """n test images of other classes, clean and stamped, with the model's predictions."""
    d = data(spec)
    r = run(run_path)
    keep = (d.test_labels != r.target).nonzero().flatten()[:n]
    clean = d.test_images[keep]
    stamped = stamp(clean, r.trigger, generator=torch.Generator().manual_seed(0))
    return clean, stamped, d.test_labels[keep].tolist(), predict(r.model, clean).tolist(), predict(r.model, stamped).tolist()


if r.trigger is not None:
    st.subheader("Clean vs stamped")
    try:
        clean, stamped, labels, p_clean, p_stamped = examples(str(path), r.config["data"])
    except MesaError as e:
        st.warning(f"Cannot show examples: {e}")
    else:
        names = r.config["classes"]
        st.image(image_grid(clean), caption=[f"{names[y]} → {names[p]}" for y, p in zip(labels, p_clean)], width=96)
        st.image(image_grid(stamped), caption=[f"stamped → {names[p]}" for p in p_stamped], width=96)
