"""MESA Lab, the app: `streamlit run app.py`. Thin views over the `mesa` engine; long stages run
as background jobs (mesa/jobs.py) that pages poll, so reloads and other tabs see them.

The page scripts live in views/, not pages/: Streamlit treats a pages/ folder as its older
multipage mode, which hijacks deep links such as /model even when st.navigation is used."""
import streamlit as st

from mesa.errors import MesaError
from views.common import sidebar

st.set_page_config(page_title="MESA Lab", page_icon="🛡️", layout="wide")
page = st.navigation([
    st.Page("views/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("views/model.py", title="Model", icon=":material/model_training:"),
    st.Page("views/mesa_search.py", title="MESA", icon=":material/search:"),
    st.Page("views/gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page("views/trigger_space.py", title="Trigger space", icon=":material/scatter_plot:"),
    st.Page("views/defense.py", title="Defense", icon=":material/shield:"),
    st.Page("views/presets.py", title="Presets", icon=":material/save:"),
])
try:
    sidebar()
    page.run()
except MesaError as e:
    st.error(str(e))
