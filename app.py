"""MESA Lab, the app: `streamlit run app.py`. Thin views over the `mesa` engine; long stages run
as background jobs (mesa/lab/jobs/queue.py) that pages poll, so reloads and other tabs see them.

Page scripts live in pages/ (one file per page, its URL the file name: /model, /mesa_search, ...);
what they share lives in ui/. st.navigation lists exactly the pages below; a deep link such as
/model opens that page, even as a fresh server's first request (ui/entry.py, tests/test_browser.py)."""
import os

import streamlit as st

from mesa.data import warm_in_background
from mesa.errors import MesaError
from mesa.lab.pipeline.projection import import_in_background
from mesa.lab.storage.ready_runs import install_ready_runs
from mesa.lab.storage.runs import NO_CODE, list_runs, read_json
from ui.common import active_run, sidebar
from ui.entry import start_app
from ui.share import adopt_link, publish
from ui.status import show_new_jobs, status_area

os.environ[NO_CODE] = "1"  # the server and its job processes never run code from a file (README: importing)

# (script, title, icon): add a page here.
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


@st.cache_resource
def prepare_server() -> list:
    """Once per server: copy the ready runs shipped in assets/runs into the runs folder, so every
    page has something to show at once (mesa/lab/storage/ready_runs.py); and, in the background, load the newest
    run's data and import the trigger maps' scikit-learn, so a class opening pages together does not
    wait for them (docs/RESULTS.md, ten sessions)."""
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
    start_app()
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
        page.run()
        publish(active_run(), share)  # after it, with the choices it made
        show_new_jobs(shown)
    except MesaError as e:
        st.error(str(e))


if __name__ == "__main__":  # as Streamlit runs it; ui/entry.py imports main() from it
    main()
