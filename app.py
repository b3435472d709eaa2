"""MESA Lab, the app: `streamlit run app.py`. Thin views over the `mesa` engine; long stages run
as background jobs (mesa/jobs.py) that pages poll, so reloads and other tabs see them."""
import streamlit as st

from mesa.errors import MesaError
from pages.common import sidebar

st.set_page_config(page_title="MESA Lab", page_icon="🛡️", layout="wide")
page = st.navigation([
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
    st.Page("pages/mesa_search.py", title="MESA", icon=":material/search:"),
    st.Page("pages/gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page("pages/trigger_space.py", title="Trigger space", icon=":material/scatter_plot:"),
    st.Page("pages/defense.py", title="Defense", icon=":material/shield:"),
    st.Page("pages/presets.py", title="Presets", icon=":material/save:"),
])
try:
    sidebar()
    page.run()
except MesaError as e:
    st.error(str(e))
