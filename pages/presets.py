"""Presets page: export the session's configuration as JSON, import one (validated), or start from
a built-in preset; the Model, MESA and Defense pages take their defaults from it."""
import streamlit as st

from mesa.lab.pipeline import presets
from mesa.errors import MesaError
from ui.common import current_preset
from ui.entry import through_app

through_app()

st.title("Presets")
builtin = presets.builtin()
name = st.selectbox("Built-in presets", list(builtin), index=list(builtin).index(presets.CLASSROOM_DEMO))
st.caption(builtin[name].get("description", ""))
if st.button("Use this preset", icon=":material/check:"):
    st.session_state["preset"] = dict(builtin[name])
    st.success(f"Loaded {name!r}: the Model, MESA and Defense pages now start from it.")

up = st.file_uploader("Import a preset (JSON)", type=["json"])
if up is not None:
    try:
        st.session_state["preset"] = presets.parse(up.getvalue())
    except MesaError as e:
        st.error(f"Cannot import {up.name}: {e}")
    else:
        st.success(f"Imported {up.name}.")

st.subheader("Current configuration")
preset = current_preset()
st.json(preset)
try:
    text = presets.dump(preset)
except MesaError as e:
    st.error(f"The current configuration is not valid: {e}")
else:
    st.download_button("Export as JSON", text, file_name="mesa-lab-preset.json", mime="application/json", icon=":material/download:")
