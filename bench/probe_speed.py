"""How fast the Probe page answers, on the `small` model: the engine's ask() (one trigger stamped on
256 held-out images, one pass on the backdoored model and on each defended model) and the whole Probe
page rerun after a click on a cell (Streamlit's AppTest, in process: the server side of a click, no
browser). Medians of --repeats. Without --run, an untrained `small` run on the embedded data with
--defenses copies saved as defended models (the time does not depend on the weights).

    python bench/probe_speed.py [--run RUN] [--defenses 3] [--repeats 20]
    # record: docs/results/probe_speed.json, by run (its folder's name, or "synthetic")
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from mesa.lab.storage import artifacts  # noqa: E402
from mesa import atomic  # noqa: E402
from mesa.data import cached_data  # noqa: E402
from mesa.models import build_model  # noqa: E402
from mesa.lab.pipeline.probe import ask, open_probe  # noqa: E402
from mesa.lab.storage.runs import read_json, save_run  # noqa: E402
from mesa.method.triggers import binary_trigger  # noqa: E402


def untrained_run(root: Path, defenses: int) -> Path:
    data = cached_data("synthetic")
    model = build_model("small", data.num_classes, data.mean, data.std)
    config = {"data": "synthetic", "model": "small", "num_classes": data.num_classes, "classes": data.classes,
              "mean": data.mean, "std": data.std, "trigger": "binary:170", "target": 0}
    path = save_run(root, config, model, binary_trigger(170))
    for i in range(defenses):
        artifacts.save_defense(path, {"method": f"finetune-copy-{i + 1}"}, model)
    return path


def median_seconds(step, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a saved run (default: an untrained small run with --defenses copies)")
    parser.add_argument("--defenses", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 2))
    root = Path(tempfile.mkdtemp(prefix="probe-speed-"))
    path = Path(args.run) if args.run else untrained_run(root, args.defenses)
    probe = open_probe(path, cached_data(read_json(path / "config.json", "run config")["data"]))
    triggers = [binary_trigger(n) for n in range(512)]
    count = iter(range(10**9))
    engine = median_seconds(lambda: ask(probe, triggers[next(count) % 512]), args.repeats)

    from streamlit.testing.v1 import AppTest
    os.environ["MESA_RUNS"] = str(path.parent)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["pending_run"] = str(path)  # the sidebar makes it the active run
    at.run()
    at.switch_page("pages/probe.py").run()
    cells = iter(range(10**9))

    def click_a_cell():
        key = f"probe-flip-{next(cells) % 9}"
        next(b for b in at.button if b.key == key).click().run()

    page = median_seconds(click_a_cell, args.repeats)
    assert not at.exception, [e.message for e in at.exception]
    record = {"run": str(path) if args.run else "untrained small run on synthetic", "models": len(probe.models),
              "images": len(probe.labels), "repeats": args.repeats, "engine_ask_seconds": round(engine, 4),
              "page_rerun_seconds": round(page, 4), "machine": machine()}
    print(record)
    out = ROOT / "docs" / "results" / "probe_speed.json"
    records = json.loads(out.read_text()) if out.exists() else {}
    atomic.write_json(out, {**records, (path.name if args.run else "synthetic"): record})


if __name__ == "__main__":
    main()
