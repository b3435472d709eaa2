"""The app's frame, which every page runs inside: the page list, the sidebar, the job status, and
the rule that a page script never runs on its own. app.py (what `streamlit run` gets) only calls
main(); nothing imports app.py.

Why the rule: the design keeps page scripts in a pages/ folder beside app.py, and Streamlit (as
documented for that legacy folder) runs a deep-linked pages/ script on its own until some session
has called st.navigation, which then switches the folder off for the whole server. So a fresh
server's first request for /model would get pages/model.py bare: no sidebar, a navigation of raw
file names. Each page's first call, through_app(), notices that it is not inside main()'s page.run()
and runs main() in its place, in the same script run (so a clicked button is not lost); main() calls
st.navigation and draws the frame and this page (a page's id is its URL path in both modes); then
the bare run stops. Public API only: no Streamlit internals, so no pin to one Streamlit minor.
tests/test_browser.py opens a deep link first on a fresh server to hold this."""
import os
from contextvars import ContextVar

import streamlit as st

from mesa.data import warm_in_background
from mesa.errors import MesaError
from mesa.lab.pipeline.projection import import_in_background
from mesa.lab.storage.ready_runs import install_ready_runs
from mesa.lab.storage.runs import NO_CODE, list_runs, read_json
from ui.common import active_run, sidebar
from ui.share import adopt_link, publish
from ui.status import show_new_jobs, status_area

# (script in pages/, title, icon): add a page here.
PAGES = [
    ("overview", "Overview", "home"),
    ("model", "Model", "model_training"),
    ("mesa_search", "MESA", "search"),
    ("gallery", "Gallery", "grid_view"),
    ("trigger_space", "Trigger space", "scatter_plot"),
    ("census", "Census", "grid_on"),
    ("defense", "Defense", "shield"),
    ("cifar10", "CIFAR-10", "table_chart"),
    ("probe", "Probe", "experiment"),
    ("presets", "Presets", "save"),
]

# True while main() runs the chosen page, in this script run's thread only (each run has its own).
_IN_FRAME: ContextVar[bool] = ContextVar("mesa_in_frame", default=False)


@st.cache_resource
def prepare_server() -> list:
    """Once per server: copy the ready runs shipped with the engine into the runs folder, so every
    page has something to show at once (mesa/lab/storage/ready_runs.py); and, in the background, load
    the newest run's data and import the trigger maps' scikit-learn, so a class opening pages together
    does not wait for them (docs/RESULTS.md, ten sessions)."""
    added = install_ready_runs()
    import_in_background()
    try:
        runs = list_runs()
        config = read_json(runs[0] / "config.json", "run config") if runs else {}
    except MesaError:
        config = {}  # a broken newest run: the sidebar names it
    if isinstance(config, dict):  # a crafted config.json may hold any JSON
        warm_in_background(str(config.get("data", "")))
    return added


def main() -> None:
    """One script run of the app: the navigation, the sidebar, the status area and the chosen page."""
    os.environ[NO_CODE] = "1"  # the server and its job processes never run code from a file (README: importing)
    prepare_server()
    st.set_page_config(page_title="MESA Lab", page_icon="🛡️", layout="wide")
    page = st.navigation([st.Page(f"pages/{script}.py", title=title, icon=f":material/{icon}:", default=i == 0)
                          for i, (script, title, icon) in enumerate(PAGES)])
    adopt_link(page.url_path)
    try:
        sidebar()
        share = st.sidebar.empty()
        publish(active_run(), share)  # before the page, which may st.stop()
        shown = status_area()
        token = _IN_FRAME.set(True)
        try:
            page.run()
        finally:
            _IN_FRAME.reset(token)
        publish(active_run(), share)  # after it, with the choices it made
        show_new_jobs(shown)
    except MesaError as e:
        st.error(str(e))


def through_app() -> None:
    """The first call of every page script: a page run outside main() runs through it instead."""
    if not _IN_FRAME.get():
        main()
        st.stop()
