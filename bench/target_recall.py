"""What a defense costs the attacked class: the target class's clean recall on the held-out split, and
the share of other classes' clean images the model sends to the target, before and after each
defense a run kept the model of (a sweep case's run keeps them all). The overall clean accuracy
hides a cost that falls on one class of ten.

    python bench/target_recall.py RUN [RUN ...]      # record: docs/results/target_recall.json (by run name)
    python bench/target_recall.py RUN --label p0.01  # under RUN@p0.01: the run's models after a sweep at 1% stamped
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from mesa import atomic  # noqa: E402
from mesa.lab.pipeline.stages import open_run  # noqa: E402
from mesa.lab.storage.artifacts import load_defended_state, load_defenses  # noqa: E402
from mesa.method.intervals import rate_ci  # noqa: E402
from mesa.method.metrics import predict  # noqa: E402

RESULT = Path(__file__).resolve().parents[1] / "docs" / "results" / "target_recall.json"


def rates(model, images, labels, target: int) -> dict:
    """Target-class recall and the other classes' share predicted as the target, with counts and intervals."""
    pred = predict(model, images)
    own, others = labels == target, labels != target
    recall, sent = (pred[own] == target).float().mean().item(), (pred[others] == target).float().mean().item()
    return {"recall": round(recall, 4), "recall_ci": rate_ci(recall, int(own.sum())), "class_images": int(own.sum()),
            "others_to_target": round(sent, 4), "others_to_target_ci": rate_ci(sent, int(others.sum())),
            "other_images": int(others.sum())}


def measure(run: str) -> dict:
    ws = open_run(run, "cpu")
    images, labels = ws.held_out
    target = ws.run.target
    out = {"target": target, "before": rates(ws.run.model, images, labels, target)}
    original = {k: v.clone() for k, v in ws.run.model.state_dict().items()}
    for method in load_defenses(run):
        state = load_defended_state(run, method)
        if state is None:
            continue
        ws.run.model.load_state_dict(state)
        out[method] = rates(ws.run.model, images, labels, target)
        ws.run.model.load_state_dict(original)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--label", help="recorded as RUN@LABEL: a sweep's defense variant replaces a run's kept "
                        "defended models, so its models are measured under their own name")
    args = parser.parse_args()
    results = json.loads(RESULT.read_text()) if RESULT.is_file() else {}
    torch.set_grad_enabled(False)
    for run in args.runs:
        name = Path(run).name + (f"@{args.label}" if args.label else "")
        results[name] = {**measure(run), **machine()}
        print(name, json.dumps(results[name]))
    atomic.write_json(RESULT, results)


if __name__ == "__main__":
    main()
