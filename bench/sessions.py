"""A class on one server: while the full demo runs as a job, N browser sessions (headless chromium,
loopback only, on the same 2 cores) each open the app and click through every page, reading each
for a few seconds; each page's answer time is measured from the click to the page drawn (its title
shown, the script done), and the first load of the app (the browser loading its scripts) apart.

    python bench/sessions.py                 # 10 sessions, 2 rounds; record: docs/results/sessions.json
    python bench/sessions.py --runs runs     # serve a copy of your runs folder instead of a small new run
    python bench/sessions.py --clients protocol  # the students' browsers elsewhere (websocket clients,
                                             # bench/streamlit_client.py) and one chromium witness here;
                                             # record: docs/results/sessions-protocol.json

Where the cores went is recorded too (CPU seconds of the server, the job process and the browsers).

Bounded: at most 20 sessions, each page waited for at most 60 s (a page not drawn by then is recorded
as failed), and the whole measurement stops after --timeout seconds (what was measured by then is
recorded, marked timed_out).
"""
import argparse
import asyncio
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import cpu_seconds, machine  # noqa: E402
from streamlit_client import protocol_student  # noqa: E402

from ui.entry import PAGES  # noqa: E402
from mesa import atomic  # noqa: E402

RESULT = ROOT / "docs" / "results" / "sessions.json"
CHROMIUM = "/usr/bin/chromium"


def small_run(runs: Path) -> None:
    """A 1-epoch synthetic run with a MESA search, a baseline and a defense, so every page has content."""
    import dataclasses

    from mesa.lab.pipeline import stages
    from mesa.method.attack import AttackConfig
    from mesa.lab.pipeline.attack_stage import run_attack
    from mesa.method.baseline import BaselineConfig
    from mesa.method.defense import DefenseConfig
    from mesa.data import cached_data
    from mesa.method.search import SearchConfig

    d = cached_data("synthetic")
    d = dataclasses.replace(d, train_images=d.train_images[:2048], train_labels=d.train_labels[:2048],
                            test_images=d.test_images[:500], test_labels=d.test_labels[:500])
    path, _ = run_attack(AttackConfig(epochs=1, out=str(runs)), data=d)
    ws = stages.open_run(path, "cpu", d)
    stages.run_search(ws, SearchConfig(betas=[0.5, 0.9], epochs=1), num_samples=64)
    stages.run_baseline(ws, BaselineConfig(restarts=5, steps=20))
    stages.run_defense(ws, DefenseConfig(method="ensemble", epochs=1))


def start_server(runs: Path, cache: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env={**os.environ, "MESA_RUNS": str(runs), "MESA_CACHE": str(cache)},
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"streamlit did not start: {log.read_text()[-2000:]}")


def title(script: str) -> str:
    return re.search(r'st\.title\("([^"]+)"\)', (ROOT / "pages" / f"{script}.py").read_text()).group(1)


async def drawn(page, script: str) -> None:
    """The page's own title shown inside the app (sidebar drawn), and the script done."""
    await page.locator("h1").filter(has_text=title(script)).first.wait_for(timeout=60_000)
    await page.get_by_text("Active run").first.wait_for(timeout=60_000)
    await page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=60_000)


async def student(browser, url: str, number: int, rounds: int, think: float, times: list) -> None:
    """One student's browser: the app opened once by its URL (a new Streamlit session: the browser loads
    the app's scripts; timed as "first load"), then every page reached by clicking its entry in the
    sidebar, as a class uses it, with `think` seconds of reading between clicks. A click is timed from
    the click to the page drawn."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await asyncio.sleep(number * think / 10)  # students do not all click in the same instant
    start = time.perf_counter()
    try:
        await page.goto(url, wait_until="commit", timeout=60_000)
        await drawn(page, PAGES[0][0])
        times.append({"session": number, "round": 0, "page": "first load", "seconds": round(time.perf_counter() - start, 3)})
    except Exception as e:  # noqa: BLE001
        times.append({"session": number, "round": 0, "page": "first load", "seconds": round(time.perf_counter() - start, 3),
                      "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"})
        await context.close()
        return
    for round_ in range(rounds):
        for script, label, _ in PAGES[1:] + PAGES[:1]:
            await asyncio.sleep(think)
            entry = {"session": number, "round": round_, "page": script}
            start = time.perf_counter()
            try:
                await page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=label).first.click(timeout=60_000)
                await drawn(page, script)
            except Exception as e:  # noqa: BLE001  (a page not drawn in time: recorded, the session goes on)
                entry["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            times.append({**entry, "seconds": round(time.perf_counter() - start, 3)})
            print(json.dumps(times[-1]), file=sys.stderr, flush=True)
    await context.close()


async def measure(url: str, sessions: int, rounds: int, think: float, timeout: float, job: bool = True,
                  clients: str = "browser", server: int = 0) -> dict:
    """`clients` "browser": every student a chromium page on this machine. "protocol": every student a
    websocket session (bench/streamlit_client.py: their browsers render on their own laptops) and one
    more, a chromium page here, the witness whose clicks are timed as a student sees them."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[  # loopback only: nothing phones home
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        teacher = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
        await teacher.goto(url)
        await drawn(teacher, PAGES[0][0])
        job_before = "no job (--no-job)"
        if job:
            await teacher.get_by_role("button", name="Run the full demo").click()
            await teacher.locator(".st-key-job-status").wait_for(timeout=60_000)
            job_before = await teacher.locator(".st-key-job-status").inner_text()
        times: list = []
        witness: list = []
        cpu_before = cpu_seconds(server)
        started = time.time()
        if clients == "browser":
            tasks = [asyncio.create_task(student(browser, url, i, rounds, think, times)) for i in range(sessions)]
        else:
            pages = [script for script, _, _ in PAGES]
            tasks = [asyncio.create_task(protocol_student(url, i, pages, rounds, think, times)) for i in range(sessions)]
            tasks.append(asyncio.create_task(student(browser, url, sessions, rounds, think, witness)))
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        wall = time.time() - started
        cpu = {k: round(v - cpu_before[k], 1) for k, v in cpu_seconds(server).items()}
        status = teacher.locator(".st-key-job-status")  # still there: the job ran all through the measurement
        job_after = await status.inner_text() if await status.count() else "no job running any more"
        await browser.close()
    return {"times": times, "witness": witness, "cpu_seconds": cpu, "wall_seconds": round(wall, 1), "timed_out": bool(pending),
            "job_at_start": " ".join(job_before.split()),
            "job_at_end": " ".join(job_after.split())}


def spread(seconds: list) -> dict:
    s = sorted(seconds)
    if not s:
        return {"median": None, "p95": None, "max": None, "n": 0}
    return {"median": round(statistics.median(s), 2), "p95": round(s[math.ceil(0.95 * len(s)) - 1], 2),  # nearest rank
            "max": round(s[-1], 2), "n": len(s)}


def summary(times: list) -> dict:
    """Answer times of the pages drawn after a click (per page and over all), the first loads apart;
    pages not drawn in time are counted apart."""
    clicks = [t for t in times if t["page"] != "first load"]
    drawn_ = [t for t in clicks if "error" not in t]
    per_page = {script: {**spread([t["seconds"] for t in drawn_ if t["page"] == script]),
                         "failed": sum(1 for t in clicks if t["page"] == script and "error" in t)}
                for script, _, _ in PAGES}
    first = [t for t in times if t["page"] == "first load"]
    every = spread([t["seconds"] for t in drawn_])
    failed = len(clicks) - len(drawn_)
    return {"per_page": per_page, "first_load": {**spread([t["seconds"] for t in first if "error" not in t]),
                                                 "failed": sum(1 for t in first if "error" in t)},
            "median": every["median"], "p95": every["p95"], "max": every["max"], "answers": every["n"],
            "failed": failed, "all_under_2s": bool(drawn_) and not failed and every["max"] < 2.0}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="times each session opens every page")
    parser.add_argument("--think", type=float, default=3.0, help="seconds a student reads a page before the next click")
    parser.add_argument("--runs", type=Path, default=None, help="runs folder to serve (copied); default: a small new run")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole measurement")
    parser.add_argument("--clients", choices=["browser", "protocol"], default="browser",
                        help="browser: every session a chromium page on this machine; protocol: every session a "
                             "websocket client (browsers elsewhere) plus one chromium witness here")
    parser.add_argument("--no-job", dest="job", action="store_false", help="measure without the demo running")
    parser.add_argument("--no-record", action="store_true", help="print only; do not write docs/results/sessions.json")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 20:
        raise SystemExit("--sessions must be within 1..20")
    work = Path(tempfile.mkdtemp(prefix="mesa-sessions-"))
    runs, cache = work / "runs", work / "cache"
    if args.runs:
        shutil.copytree(args.runs, runs, ignore=shutil.ignore_patterns(".jobs"))
    else:
        small_run(runs)
    proc, url = start_server(runs, cache, work / "streamlit.log")
    try:
        result = asyncio.run(measure(url, args.sessions, args.rounds, args.think, args.timeout, args.job,
                                     args.clients, proc.pid))
    finally:
        proc.terminate()
        proc.wait(30)
        log = (work / "streamlit.log").read_text(errors="replace").splitlines()[-20:]
        shutil.rmtree(work, ignore_errors=True)
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    record = {"sessions": args.sessions, "rounds": args.rounds, "think_seconds": args.think, "pages": [p for p, _, _ in PAGES],
              "command": "python " + " ".join(["bench/sessions.py", *sys.argv[1:]]), "machine": machine(),
              "clients": args.clients, "browser": chromium, **summary(result["times"]),
              **({"witness": summary(result["witness"])} if args.clients == "protocol" else {}),
              "cpu_seconds": result["cpu_seconds"], "wall_seconds": result["wall_seconds"],
              "timeout": args.timeout, "timed_out": result["timed_out"],
              "job_at_start": result["job_at_start"], "job_at_end": result["job_at_end"],
              "server_log_tail": log, "times": result["times"], "witness_times": result["witness"]}
    print(json.dumps({k: v for k, v in record.items() if not k.endswith("times")}, indent=1))
    if not args.no_record:
        atomic.write_json(RESULT.with_name(f"sessions-{args.clients}.json") if args.clients != "browser" else RESULT, record)


if __name__ == "__main__":
    main()
