"""The Streamlit app, headless (streamlit.testing): every page renders with no run and with a small
saved run (attack, search, baseline, defense made once per session), key widgets exist, and a
tiny job runs end to end through the background queue."""
import dataclasses
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch

from ui.entry import PAGES as APP_PAGES
from mesa.lab.storage import artifacts
from mesa.lab.jobs import queue
from mesa.lab.pipeline import presets
from mesa.lab.pipeline import stages
from mesa.method.attack import AttackConfig
from mesa.lab.pipeline.attack_stage import run_attack
from mesa.method.baseline import BaselineConfig
from mesa.method.census import CensusConfig
from mesa.method.defense import DefenseConfig
from mesa.data import cached_data
from mesa.lab.jobs.tasks import attack_work, stage_work
from mesa.lab.jobs.queue import CANCELLED, DONE, FAILED, JobQueue
from mesa.progress import Progress
from mesa.method.search import SearchConfig

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
ROOT = Path(__file__).resolve().parent.parent
PAGES = [script for script, _, _ in APP_PAGES]  # every page the app lists


def tiny(data):
    """The first 1,024 training and 500 test images: enough for every stage to run a few steps."""
    return dataclasses.replace(data, train_images=data.train_images[:1024], train_labels=data.train_labels[:1024],
                               test_images=data.test_images[:500], test_labels=data.test_labels[:500])


@pytest.fixture(scope="session")
def saved_run(tmp_path_factory):
    """A 1-epoch synthetic run with every kind of result, made once on a sliver of the data."""
    torch.set_num_threads(2)
    data = tiny(cached_data("synthetic"))
    path, _ = run_attack(AttackConfig(epochs=1, out=str(tmp_path_factory.mktemp("runs"))), data=data)
    ws = stages.open_run(path, "cpu", data)
    stages.run_search(ws, SearchConfig(betas=[0.5, 0.9], epochs=1), num_samples=32)
    stages.run_baseline(ws, BaselineConfig(restarts=3, steps=5))
    stages.run_defense(ws, DefenseConfig(method="ensemble", epochs=1), census=CensusConfig(images=16))
    artifacts.save_detection(path, {"per_class": [{"class": c, "mean_asr": 0.9 if c == 0 else 0.1, "max_asr": 1.0}
                                                  for c in range(10)],
                                    "suspect": 0, "anomaly_index": 9.0, "backdoor_detected": True})
    return path


@pytest.fixture
def with_run(saved_run):
    """The saved run copied into this test's $MESA_RUNS (set by conftest)."""
    dest = Path(os.environ["MESA_RUNS"]) / saved_run.name
    shutil.copytree(saved_run, dest)
    return dest


@pytest.fixture(autouse=True)
def fresh_queue(monkeypatch):
    """Each test sees its own process-wide job queue, so one test's jobs never show on another's pages."""
    monkeypatch.setattr(queue, "_QUEUE", JobQueue())
    return queue.job_queue()


def app(page: str | None = None):
    at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py")
        at.run()
    return at


def assert_clean(at):
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_without_runs(page):
    assert_clean(app(page))


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_with_a_run(page, with_run):
    at = app(page)
    assert_clean(at)
    assert not any("No saved run" in i.value for i in at.info)


def test_sidebar_shows_the_active_run(with_run):
    at = app()
    assert at.sidebar.selectbox[0].value == str(with_run)
    assert [m.label for m in at.sidebar.metric] == ["Clean acc", "ASR"]


def test_key_widgets_exist(with_run):
    at = app()
    assert any(b.label == "Run the full demo" for b in at.button)
    at = app("model")
    labels = {w.label for w in at.selectbox} | {w.label for w in at.number_input}
    assert {"Data source", "Architecture", "Target class", "Poison ratio", "Epochs"} <= labels
    (patterns,) = [r for r in at.radio if r.label.startswith("Pattern")]
    assert len(patterns.options) == 51 and patterns.value == 170
    at = app("mesa_search")
    assert {"alpha (entropy weight)", "epochs per beta"} <= {w.label for w in at.number_input}
    assert any(b.label == "Run MESA search" for b in at.button)
    at = app("defense")
    assert at.multiselect[0].value == ["ensemble", "pixel-sgd", "finetune"]  # the demo preset's methods
    at = app("presets")
    assert at.selectbox[0].options == ["CIFAR-10 live demo", "CPU classroom demo", "paper: ResNet-18 CIFAR-10"]
    assert at.selectbox[0].value == "CPU classroom demo"


def test_choosing_a_pattern_sets_the_trigger():
    at = app("model")
    next(r for r in at.radio if r.label.startswith("Pattern")).set_value(7).run()
    assert_clean(at)
    assert any("binary:7" in c.value for c in at.caption)


def recording_work(on_progress, should_stop):
    for step in range(1, 4):
        on_progress(Progress("count", step, 3, values={"x": step}, images=torch.zeros(2, 3, 3, 3)))
    return {"counted": 3}


def test_job_queue_runs_jobs_in_order_and_reports_failures():
    q = JobQueue()
    job = q.submit("count", "count", recording_work)
    failing = q.submit("attack", "bad target", attack_work(AttackConfig(epochs=1, target=99)))
    dropped = q.submit("count", "cancelled while queued", recording_work)
    dropped.cancel()
    q.wait(dropped, 120)
    assert job.status == DONE and job.result == {"counted": 3}
    assert [e["x"] for e in job.events] == [1, 2, 3] and job.fraction == 1.0 and job.images.shape == (2, 3, 3, 3)
    assert failing.status == FAILED and "out of range" in failing.error
    assert dropped.status == CANCELLED and not dropped.events
    assert q.active() == [] and q.latest("count") is dropped


def test_the_apps_queue_runs_stage_jobs_in_a_child_process(with_run):
    q = JobQueue(child_process=True)  # as job_queue() makes it for the app
    job = q.submit("baseline", "baseline", stage_work(with_run, "baseline", BaselineConfig(restarts=2, steps=3)),
                   run_path=with_run)
    failing = q.submit("attack", "bad target", attack_work(AttackConfig(epochs=1, target=99)))
    closure = q.submit("count", "a closure", lambda on_progress, should_stop: None)
    q.wait(closure, 300)
    assert job.status == DONE, job.error
    assert job.result["restarts"] == 2 and job.events[-1]["stage"] == "baseline pixel-sgd"
    assert len(artifacts.load_baseline(with_run)["triggers"]) == 2
    assert failing.status == FAILED and "out of range" in failing.error  # the child's MesaError, as one
    assert closure.status == FAILED and "cannot be sent to the job process" in closure.error


def test_a_failed_job_shows_its_error_on_its_page(fresh_queue):
    fresh_queue.wait(fresh_queue.submit("attack", "bad", attack_work(AttackConfig(epochs=1, target=99))), 120)
    at = app("model")
    assert any("failed" in e.value and "out of range" in e.value for e in at.error)


def test_a_button_starts_a_background_job_and_the_page_follows_it(with_run, fresh_queue):
    at = app("mesa_search")
    next(n for n in at.number_input if n.label == "restarts").set_value(2)
    next(n for n in at.number_input if n.label == "steps").set_value(10)
    next(b for b in at.button if b.label == "Run pixel-sgd").click().run()
    job = fresh_queue.latest("baseline")
    assert job is not None and job.run_path == str(with_run)
    fresh_queue.wait(job, 300)
    at.run()
    assert_clean(at)
    assert job.status == DONE and any(f"Job #{job.id}" in m.value and "done" in m.value for m in at.markdown)


def test_every_page_script_is_listed_and_enters_through_the_app():
    """A page missing from ui/entry.py's PAGES is unreachable; one without through_app() breaks its deep link."""
    scripts = {p.stem for p in (ROOT / "pages").glob("*.py")}
    assert scripts == {script for script, _, _ in APP_PAGES}
    for name in scripts:
        assert "\nthrough_app()\n" in (ROOT / "pages" / f"{name}.py").read_text(), name


def test_nothing_imports_app_py_and_the_app_uses_streamlit_s_public_api_only():
    """app.py is only what `streamlit run` gets (the frame is ui/entry.py), so nothing imports it; and
    app.py, ui/ and pages/ import only streamlit's public modules (its internals change in any minor
    version: issue 25)."""
    frontend = [ROOT / "app.py", *ROOT.glob("ui/*.py"), *ROOT.glob("pages/*.py")]
    for f in frontend + [*ROOT.glob("mesa/**/*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("tests/*.py")]:
        assert not re.search(r"^\s*(import app\b|from app\b)", f.read_text(), re.M), f
    public = {"streamlit", "streamlit.components.v1"}
    for f in frontend:
        assert set(re.findall(r"^\s*(?:from|import) (streamlit\S*)", f.read_text(), re.M)) <= public, f


def test_a_link_reopens_the_same_view(with_run):
    """Run (by folder name), configuration and page choices come from the URL and go back into it."""
    at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(run=with_run.name, config='{"attack":{"epochs":7}}', order="as sampled", count="16")
    at.switch_page("pages/gallery.py")
    at.run()
    assert_clean(at)
    assert at.sidebar.selectbox[0].value == str(with_run)
    assert at.radio[0].value == "as sampled" and at.slider[0].value == 16
    demo = presets.builtin()["CPU classroom demo"]["attack"]
    assert at.session_state["preset"]["attack"] == {**demo, "epochs": 7}  # the link's part over the demo preset
    assert dict(at.query_params) == {"run": with_run.name, "config": '{"attack":{"epochs":7}}', "order": "as sampled",
                                     "count": "16", "size": "48"}
    assert any(c.value.startswith("/gallery?run=") and "count=16" in c.value for c in at.code)  # the link to copy


def test_the_model_pages_choices_come_from_the_link():
    """The attack being set up (data, epochs, pattern, ...) is in the link; a bad value falls back."""
    at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(pattern="7", epochs="5", target="99", data="nowhere")
    at.switch_page("pages/model.py")
    at.run()
    assert_clean(at)
    assert any("binary:7" in c.value for c in at.caption)
    values = {w.label: w.value for w in [*at.number_input, *at.selectbox]}
    assert values["Epochs"] == 5 and values["Target class"] == 0 and values["Data source"] == "synthetic"
    assert at.query_params["pattern"] == "7" and at.query_params["epochs"] == "5" and at.query_params["target"] == "0"


def test_a_bad_link_is_named_and_ignored(with_run):
    at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(run="gone", config="{not json", order="sideways")
    at.switch_page("pages/gallery.py")
    at.run()
    assert not at.exception
    assert any("'gone' is not on this machine" in w.value for w in at.warning)
    assert any("configuration is not valid" in w.value for w in at.warning)
    assert at.radio[0].value == "highest ASR first" and at.sidebar.selectbox[0].value == str(with_run)


def test_a_running_job_shows_at_the_top_of_every_page_and_can_be_cancelled(fresh_queue):
    def slow(on_progress, should_stop):
        for step in range(1, 10_000):
            on_progress(Progress("slow stage", step, 10_000))
            if should_stop():
                return None
            time.sleep(0.01)

    job = fresh_queue.submit("demo", "a slow job", slow)
    try:
        for page in PAGES:
            at = app(page)
            assert_clean(at)
            assert any(f"Job #{job.id}" in m.value and "a slow job" in m.value for m in at.markdown), page
            assert any(p.proto.text.startswith("slow stage") for p in at.get("progress")), page
        next(b for b in at.button if b.key == f"status-cancel-{job.id}").click().run()
        assert fresh_queue.wait(job, 30).status == CANCELLED
    finally:
        job.cancel()


def test_a_job_interrupted_by_a_restart_is_shown_as_such(monkeypatch):
    from mesa.lab.jobs import history

    history.save(history.folder(), {"id": 4, "kind": "attack", "label": "attack before the restart",
                                            "run_path": None, "status": "running", "stage": "train", "step": 5, "total": 10})
    monkeypatch.setattr(history, "_alive", lambda pid: False)  # its server (this process wrote it) is gone
    monkeypatch.setattr(queue, "_QUEUE", JobQueue())
    at = app("model")
    assert any("Job #4" in m.value and "interrupted" in m.value for m in at.markdown)
    assert any("was interrupted" in w.value for w in at.warning)
