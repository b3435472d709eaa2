"""Neural Cleanse and unlearning on the embedded data, through the stages the CLI runs: NC's
detection, its defense (retraining with its reversed trigger blended in, labels kept) at the
product's stamped fraction and at the NC paper's 20%, and unlearning from MESA's samples, each with
the census; the planted trigger's ASR on the held-out 20%.

    python bench/nc_unlearn_synthetic.py [--run RUN] [--epochs 10] [--seeds 1 2]

--seeds: NC's reversal and its defense again with these seeds, after the rest (one seed's ASR is not
the method's).

Default run: a copy of the shipped ready run (assets/runs), searched already. Writes
docs/results/nc_unlearn_synthetic.json.
"""
import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.lab.pipeline.stages import open_run, run_defense, run_detection  # noqa: E402
from mesa.lab.storage.ready_runs import SHIPPED  # noqa: E402
from mesa.method.defense import DefenseConfig  # noqa: E402
from mesa.method.detection import DetectionConfig  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "nc_unlearn_synthetic.json"


def kept(result: dict) -> dict:
    return {k: result[k] for k in ("before", "after", "seconds", "census") if k in result}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=str(SHIPPED / "ready-synthetic-small-binary170-t0"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="*", default=[])
    args = parser.parse_args()
    run = shutil.copytree(args.run, Path(tempfile.mkdtemp()) / Path(args.run).name)
    ws = open_run(run, "cpu")
    out = {"run": args.run, "machine": machine(), "epochs": args.epochs}
    det = run_detection(ws, DetectionConfig(method="neural-cleanse"))
    out["detection"] = {k: det[k] for k in ("suspect", "smallest", "median", "mad", "backdoor_detected")}
    out["detection"]["per_class"] = [{k: c[k] for k in ("class", "l1_norm", "anomaly_index", "flagged", "asr")}
                                     for c in det["per_class"]]
    base = DefenseConfig(method="neural-cleanse", epochs=args.epochs)
    for name, cfg in {"neural-cleanse": base, "neural-cleanse at 20% stamped": replace(base, poison_ratio=0.2),
                      "unlearn": replace(base, method="unlearn"), "original": replace(base, method="original")}.items():
        out[name] = kept(run_defense(ws, cfg))
        print(name, json.dumps(out[name]["after"]), file=sys.stderr)
    for seed in args.seeds:
        suspect = run_detection(ws, DetectionConfig(method="neural-cleanse", seed=seed))["suspect"]
        out.setdefault("neural-cleanse by seed", {})[str(seed)] = {
            "suspect": suspect, **kept(run_defense(ws, replace(base, seed=seed)))}
        print("seed", seed, suspect, json.dumps(out["neural-cleanse by seed"][str(seed)]["after"]), file=sys.stderr)
    atomic.write_json(RESULT, out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
