"""Landing page: what a backdoor is, what MESA does, and what data is available here."""
import streamlit as st

from mesa.data import cache_root
from mesa.runs import list_runs

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
st.subheader("Data on this machine")
tv = cache_root() / "torchvision"
st.markdown(
    f"""
- **synthetic**: always available (made on the fly, no download).
- **cifar10**: {"present" if (tv / "cifar-10-batches-py").is_dir() else f"not downloaded (put it in `{tv}`)"}.
- **cifar100**: {"present" if (tv / "cifar-100-python").is_dir() else f"not downloaded (put it in `{tv}`)"}.
- **folder:PATH**: any image folder with `train/<class>/*` and `test/<class>/*`.
"""
)
runs = list_runs()
st.subheader("Saved runs")
st.write(f"{len(runs)} run(s) under `runs/`." if runs else "No runs yet: `python -m mesa attack --epochs 3` makes one.")
