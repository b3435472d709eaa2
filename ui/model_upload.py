"""The Model page's form for bringing your own model: an uploaded file (TorchScript, a state dict or
BackdoorBench's attack_result.pt) imported as a run, read without running any of its code."""
import streamlit as st

from mesa.errors import MesaError
from mesa.lab.imports import MAX_UPLOAD_BYTES, ImportConfig, import_upload
from mesa.lab.model_files import FORMATS
from mesa.models import ARCHITECTURES
from ui.common import select_run


def load_a_model(sources: list[str]) -> None:
    """Bring your own model: an uploaded file becomes a run (trigger and target unknown until detection)."""
    st.caption("TorchScript (.ts/.pt), a state dict of the bare network (.pt/.pth/.safetensors), or "
               f"BackdoorBench's attack_result.pt; at most {MAX_UPLOAD_BYTES >> 20} MB. Nothing in the file is "
               "run: files that need pickled code are refused.")
    up = st.file_uploader("Model file", type=["pt", "pth", "ts", "safetensors", "bin"], key="byom-file")
    c1, c2, c3 = st.columns(3)
    fmt = c1.selectbox("Format", FORMATS, key="byom-format", help="auto: told from the file")
    arch = c2.selectbox("Architecture (state dicts)", ["(from the file)", *ARCHITECTURES], key="byom-arch")
    source = c3.selectbox("Data", ["(from the file: BackdoorBench)", *sources], key="byom-data")
    spec = None if source.startswith("(") else source
    if source == "folder":
        folder = c3.text_input("Image folder (train/<class>/*, test/<class>/*)", key="byom-folder")
        spec = f"folder:{folder}" if folder else None
    c4, c5 = st.columns(2)
    target = c4.text_input("Target class, if known (else detection names it)", key="byom-target")
    location = c5.text_input("Trigger location: random or fixed:ROW,COL", "random", key="byom-location")
    if st.button("Import model", icon=":material/upload:", disabled=up is None):
        try:
            if target.strip() and not target.strip().isdigit():
                raise MesaError(f"target class {target!r} is not a class number")
            cfg = ImportConfig(file="", data=spec, arch=None if arch.startswith("(") else arch, format=fmt,
                               target=int(target) if target.strip() else None, location=location.strip() or "random")
            with st.spinner("Reading the model and measuring its clean accuracy ..."):
                path, metrics = import_upload(up.getvalue(), up.name, cfg)
        except MesaError as e:
            st.error(f"Cannot import {up.name}: {e}")
            return
        select_run(path)
        st.success(f"Imported as `{path.name}`: clean accuracy {metrics['clean_acc']:.3f}"
                   + (f"; the attacker's own poisoned images: ASR {metrics['attacker_asr']:.3f}"
                      if "attacker_asr" in metrics else ""))
        if "warning" in metrics:
            st.warning(metrics["warning"])
