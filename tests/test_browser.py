"""The app in a real browser: `streamlit run app.py` on loopback, driven by Debian's chromium through
Playwright. Every page must render with no Streamlit exception box and no console error; screenshots
go to test-artifacts/ for a human to look at."""
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote, urlparse
from pathlib import Path

import pytest

from ui.entry import PAGES as APP_PAGES
from tests.test_app import saved_run  # noqa: F401  (the session fixture: a small run with every result)

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PAGES = [script for script, _, _ in APP_PAGES]
TITLES = {script: title for script, title, _ in APP_PAGES}


def heading(script: str) -> str:
    """The page's own title, read from its script's first st.title(...): a wrong page shows another."""
    return re.search(r'st\.title\("([^"]+)"\)', (ROOT / "pages" / f"{script}.py").read_text()).group(1)


def url_path(script: str) -> str:
    return "" if script == PAGES[0] else script


if os.environ.get("CI") == "true":  # CI installs both: a missing browser there is a failure, not a skip
    assert CHROMIUM.exists(), "CI must install Debian's chromium (see .ci/run)"
    from playwright import sync_api
else:
    pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install playwright")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(runs: Path, log_path: Path, **env):
    """`streamlit run app.py` headless on a free loopback port serving `runs`; yields its URL."""
    port = free_port()
    env = {**os.environ, "MESA_RUNS": str(runs), **env}
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"streamlit exited: {log_path.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def server(saved_run, tmp_path_factory):  # noqa: F811
    """A headless Streamlit server on a free loopback port, with the saved run as its only run."""
    tmp_path = tmp_path_factory.mktemp("server")
    runs = tmp_path / "runs"
    shutil.copytree(saved_run, runs / saved_run.name)
    with streamlit_server(runs, tmp_path / "streamlit.log", MESA_CACHE=str(tmp_path / "cache")) as url:
        yield url


def base_path_probe(url: str) -> bool:
    """Opened at /model, Streamlit's frontend first looks for its server under /model/_stcore/ and
    gets a 404 before it falls back to /_stcore/: expected, not an error of the app."""
    path = urlparse(url).path
    return "/_stcore/" in path and not path.startswith("/_stcore/")


def settle(page) -> None:
    """Wait until the page has a title and Streamlit has stopped running the script."""
    page.wait_for_selector("h1", timeout=90_000)
    page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=120_000)
    page.wait_for_timeout(1000)


@pytest.fixture
def browser_page():
    """A chromium page and the list of console errors it logs."""
    errors = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(f"{m.text} ({m.location.get('url')})")
                if m.type == "error" and not base_path_probe(m.location.get("url", "")) else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        yield page, errors
        browser.close()


def assert_on(page, script: str) -> None:
    """The right page, inside the app: its heading, its navigation entry current, the app's sidebar."""
    assert page.locator("h1").first.inner_text() == heading(script), f"wrong page for {script}"
    current = page.locator('[data-testid="stSidebarNavLink"][aria-current="page"]')
    assert current.inner_text().strip().endswith(TITLES[script]), f"navigation not on {script}"
    assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {script}"
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Active run").count() == 1


def test_every_page_by_deep_link_then_by_click(server, browser_page):
    """Each page opened by its own URL, as a bookmark or a reload would, then by clicking its entry
    in the navigation. The first request this fresh server gets is a deep link (not /), the case
    where Streamlit would run a pages/ script without app.py (ui/entry.py)."""
    page, errors = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    for script in PAGES[1:] + PAGES[:1]:
        page.goto(f"{server}/{url_path(script)}")
        settle(page)
        assert_on(page, script)
        page.screenshot(path=str(ARTIFACTS / f"{script}.png"), full_page=True)
    for script in PAGES[1:] + PAGES[:1]:
        page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=TITLES[script]).first.click()
        page.wait_for_url(re.compile(rf"{re.escape(server)}/{url_path(script)}(\?.*)?$"))
        settle(page)
        assert_on(page, script)
    assert not errors, errors


def shared_link(page) -> str:
    """The link the sidebar's "Share this view" offers."""
    page.get_by_text("Share this view").click()
    return page.locator('[data-testid="stSidebar"] [data-testid="stCode"]').inner_text().strip()


def reopened(page, link: str, script: str):
    """The link opened in another session (a new tab with no state of its own), settled on its page."""
    fresh = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
    fresh.goto(link)
    settle(fresh)
    assert_on(fresh, script)
    assert urlparse(fresh.url).query == urlparse(link).query
    return fresh


def asr_shown(page) -> list[str]:
    """The Probe page's answer: the label and ASR of every model."""
    return page.locator('[data-testid="stMain"] [data-testid="stMetric"]').all_inner_texts()


def test_a_copied_link_reopens_the_same_view(server, browser_page):
    """The link the sidebar offers, opened in a fresh tab: same page, same choices, same link."""
    page, errors = browser_page
    page.goto(f"{server}/gallery?order=as+sampled&count=16")
    settle(page)
    assert page.get_by_role("radio", name="as sampled").is_checked()
    link = shared_link(page)
    assert "/gallery?run=" in link and "order=as+sampled" in link and "count=16" in link
    fresh = reopened(page, link, "gallery")
    assert fresh.get_by_role("radio", name="as sampled").is_checked()
    assert not errors, errors


def test_a_probe_link_reopens_the_same_trigger_and_asr(server, browser_page):
    """Flip a cell of the planted trigger (binary:170 -> binary:426): the link names the new trigger, and
    opened in another session it probes that trigger, with the same ASR on every model."""
    page, errors = browser_page
    page.goto(f"{server}/probe")
    settle(page)
    page.locator(".st-key-probe-flip-0 button").click()
    page.wait_for_url(re.compile(r"trigger=binary%3A426"))
    settle(page)
    link = shared_link(page)
    assert "/probe?run=" in link and "trigger=binary%3A426" in link
    fresh = reopened(page, link, "probe")
    assert fresh.locator(".st-key-probe-flip-0 button").inner_text() == "white"
    assert asr_shown(fresh) == asr_shown(page) and len(asr_shown(page)) == 2
    assert not errors, errors


def test_a_mesa_page_link_reopens_the_same_tab(server, browser_page):
    page, errors = browser_page
    page.goto(f"{server}/mesa_search")
    settle(page)
    page.get_by_role("tab", name="Detection").click()
    page.wait_for_url(re.compile(r"tab=Detection"))
    settle(page)
    fresh = reopened(page, shared_link(page), "mesa_search")
    assert fresh.get_by_role("tab", name="Detection").get_attribute("aria-selected") == "true"
    assert not errors, errors


def test_a_job_started_in_the_browser_runs_live_and_its_result_appears(server, browser_page):
    """The job's status area sits at the top of every page (no scrolling) while it runs."""
    page, errors = browser_page
    page.goto(f"{server}/mesa_search")
    settle(page)
    page.get_by_role("tab", name="Baselines").click()
    for label, value in (("restarts", "2"), ("steps", "150")):  # long enough to watch
        page.get_by_label(label).fill(value)
        page.get_by_label(label).press("Enter")
        settle(page)
    page.get_by_role("button", name="Run pixel-sgd").click()
    status = page.locator(".st-key-job-status")
    status.wait_for(timeout=60_000)
    page.locator('[data-testid="stSidebarNavLink"]').filter(has_text="Gallery").click()
    status.wait_for(timeout=30_000)
    box = status.bounding_box()
    assert box["y"] + box["height"] < 1000, "the status area is below the fold"
    page.locator('[data-testid="stSidebarNavLink"]').filter(has_text="MESA").click()
    settle(page)
    page.get_by_role("tab", name="Baselines").click()
    page.get_by_text("pixel-sgd: 2 triggers").wait_for(state="attached", timeout=300_000)  # the job's result, drawn
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "job-done.png"), full_page=True)
    assert not errors, errors


def test_a_crafted_link_and_a_hostile_preset_draw_the_page_under_one_warning(server, browser_page):
    """Issue 24: a link whose configuration has a string for the target class, then a preset import
    that points `init` outside the runs folder: each page draws, with one line saying what was refused."""
    page, errors = browser_page
    page.goto(f"{server}/model?config=" + quote('{"attack":{"target":"0"}}'))
    settle(page)
    assert_on(page, "model")
    assert page.get_by_text('attack.target must be a whole number, got "0"').count() == 1
    page.goto(f"{server}/presets")
    settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "hostile.json", "mimeType": "application/json", "buffer": b'{"attack": {"init": "../../x"}}'}])
    page.get_by_text("Cannot import hostile.json").wait_for(timeout=30_000)
    settle(page)
    assert_on(page, "presets")
    assert "attack.init must name a folder inside the runs folder" in page.locator('[data-testid="stAlert"]').inner_text()
    page.screenshot(path=str(ARTIFACTS / "hostile-preset.png"), full_page=True)
    assert not errors, errors


def test_a_fresh_app_opens_on_the_cifar10_run_and_every_page_fills_on_real_images(browser_page, tmp_path):
    """As a new user gets it: an empty runs folder, the ready runs installed on start, the CIFAR-10
    one opened first; every page draws it from the shipped images with no download, and the Probe
    asks each pixel-SGD restart's defended model too."""
    page, errors = browser_page
    with streamlit_server(tmp_path / "runs", tmp_path / "streamlit.log", MESA_CACHE=str(tmp_path / "cache"),
                          MESA_READY_RUNS="1") as url:
        for script in PAGES:
            start = time.time()
            page.goto(f"{url}/{url_path(script)}")
            settle(page)
            assert_on(page, script)
            sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
            assert "(airplane)" in sidebar, f"{script} is not on the CIFAR-10 run"  # its target; the embedded run's is disk
            assert time.time() - start < 90, f"{script} took {time.time() - start:.0f} s"
        page.goto(f"{url}/probe")
        settle(page)
        shown = " ".join(asr_shown(page))
        assert "after pixel-sgd (restart 1)" in shown and "after mesa:0.9" in shown, shown
    assert not errors, errors
