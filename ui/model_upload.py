"""The Model page's form for bringing your own model: an uploaded file (a state dict or BackdoorBench's
attack_result.pt) imported as a run, read as data. The server never runs code from an upload, so a
TorchScript program is refused (the CLI runs one with --trust-code)."""
import streamlit as st

from mesa.errors import MesaError
from mesa.lab.imports.model_import import MAX_UPLOAD_BYTES, ImportConfig, import_upload
from mesa.lab.imports.model_files import FORMATS
from mesa.lab.storage.runs import TORCHSCRIPT
from mesa.models import ARCHITECTURES
from ui.common import select_run


def load_a_model(sources: list[str]) -> None:
    """Bring your own model: an uploaded file becomes a run (trigger and target unknown until detection)."""
    st.caption("A state dict of the bare network (.pt/.pth/.safetensors) or BackdoorBench's attack_result.pt; "
               f"at most {MAX_UPLOAD_BYTES >> 20} MB. Both are read as data: files that need pickled code are "
               "refused, and so is TorchScript, which is code (import it on your own machine with "
               "`python -m mesa import FILE --trust-code`).")
    up = st.file_uploader("Model file", type=["pt", "pth", "ts", "safetensors", "bin"], key="byom-file")
    c1, c2, c3 = st.columns(3)
    fmt = c1.selectbox("Format", [f for f in FORMATS if f != TORCHSCRIPT], key="byom-format",
                       help="auto: told from the file")
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
                path, metrics = import_upload(up.getvalue(), up.name, cfg, on_wait=st.info)
        except MesaError as e:
            st.error(f"Cannot import {up.name}: {e}")
            return
        except Exception as e:  # a stranger's file may fail in ways no check foresaw: one box, its text not echoed
            st.error(f"Cannot import {up.name}: it failed while being read ({type(e).__name__})")
            return
        select_run(path)
        st.success(f"Imported as `{path.name}`: clean accuracy {metrics['clean_acc']:.3f}"
                   + (f"; the attacker's own poisoned images: ASR {metrics['attacker_asr']:.3f}"
                      if "attacker_asr" in metrics else ""))
        if "warning" in metrics:
            st.warning(metrics["warning"])
