"""The CIFAR-10 classroom run that ships with the app: a model backdoored on a full CIFAR-10 copy,
then measured, searched, reversed, defended and censused on the 2,000 shipped test images
(`cifar10-sample`: the defender's 1,600 and 400 held out), so every page works offline on real
images and any stage can be rerun from the shipped copy with no download.

    python bench/cifar_classroom.py --from RUN [--base RUN] [--ship assets/runs] [--work FOLDER]

RUN: a backdoored CIFAR-10 run (the sweep's case binary:170 -> 0: the trigger every page starts
from, chosen before any result); --base: its clean base, for the census floor (default: the
model's shipped base). Weights ship in half precision.
"""
import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesa.data import SAMPLE, cached_data  # noqa: E402
from mesa.lab.pipeline.census_stage import census_of  # noqa: E402
from mesa.lab.pipeline.stages import open_run, run_baseline, run_census, run_defense, run_search  # noqa: E402
from mesa.lab.storage import artifacts  # noqa: E402
from mesa.lab.storage.bases import shipped_base  # noqa: E402
from mesa.lab.storage.ready_runs import SHIPPED, halve_weights  # noqa: E402
from mesa.lab.storage.runs import load_run, save_run  # noqa: E402
from mesa.method import registry  # noqa: E402
from mesa.method.baseline import BaselineConfig  # noqa: E402
from mesa.method.census import CensusConfig  # noqa: E402
from mesa.method.defense import DefenseConfig  # noqa: E402
from mesa.method.metrics import evaluate  # noqa: E402
from mesa.method.search import SearchConfig  # noqa: E402

SETTINGS = {"search": SearchConfig(epochs=10), "baseline": BaselineConfig(restarts=3),
            "defenses": ["mesa:0.9", "ensemble", "pixel-sgd", "neural-cleanse", "unlearn", "finetune"],
            "defense_epochs": 10, "census": CensusConfig(images=256)}


def rehome(source: Path, scratch: Path) -> Path:
    """The backdoored model as a new run on the shipped images, its attack's own record kept beside."""
    run = load_run(source)
    data = cached_data(SAMPLE)
    config = {**run.config, "data": SAMPLE, "attacked_on": run.config["data"], "attack_metrics": run.metrics}
    metrics = evaluate(run.model, data.test_images, data.test_labels, run.trigger, run.target)
    return save_run(scratch, config, run.model, run.trigger, metrics, name=f"ready-cifar10-{run.config['model']}-"
                    f"{run.config['trigger'].replace(':', '')}-t{run.target}")


def make(source: Path, base: Path | None, ship: Path, work: Path, device: str = "cpu") -> Path:
    """Each stage saved in `work` as it finishes and skipped when rerun; then the run ships, halved."""
    found = sorted(work.glob("ready-cifar10-*"))
    path = found[0] if found else rehome(source, work)
    ws = open_run(path, device, data=cached_data(SAMPLE))
    census = SETTINGS["census"]
    if artifacts.load_census(path, "floor") is None:
        base = base or shipped_base(ws.run.config["model"], ws.run.config["classes"])
        census_of(ws, load_run(base, device).model, "floor", census)
    if artifacts.load_census(path, "before") is None:
        run_census(ws, census)
    if artifacts.load_search(path) is None:
        run_search(ws, SETTINGS["search"])
    for cfg in (SETTINGS["baseline"], registry.inversion("neural-cleanse").config()):
        if artifacts.load_baseline(path, registry.inversion_for(cfg).stage) is None:
            run_baseline(ws, cfg)
    done = artifacts.load_defenses(path)
    for method in SETTINGS["defenses"]:
        if method not in done:
            out = run_defense(ws, DefenseConfig(method=method, epochs=SETTINGS["defense_epochs"]), census=census)
            print(method, {k: out["after"].get(k) for k in ("asr", "clean_acc")}, out["census"]["after"]["open"], flush=True)
    final = ship / path.name
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(path, final)
    halve_weights(final)
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", required=True, help="a backdoored CIFAR-10 run")
    ap.add_argument("--base", default=None, help="its clean base (default: the model's shipped one)")
    ap.add_argument("--ship", default=str(SHIPPED))
    ap.add_argument("--work", default=str(Path.home() / ".cache" / "mesa-lab" / "classroom"),
                    help="where the run is made, stage by stage (resumable)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(make(Path(args.source), Path(args.base) if args.base else None, Path(args.ship), work, args.device))


if __name__ == "__main__":
    main()
