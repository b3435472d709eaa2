"""The CIFAR-10 results measured by bench/defense_cifar10.py and shipped in docs/results
(cifar10-small-*.json), read into one row per case and method: what each defense leaves on the planted
trigger and in the census of all 512 black-white patterns. The app shows them beside the live demo,
whose embedded data does not show MESA's edge over the single reversed trigger (docs/RESULTS.md)."""
import json
from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parents[2] / "docs" / "results"
RECORD_GLOB = "cifar10-small-*.json"
BEFORE, FLOOR = "before defense", "clean base (floor)"
RECIPES = {"paper": "the reference code's attack (10 epochs, lr 1e-3, 1% poison)", "ours-1pct": "our attack at 1% poison"}


@dataclass(frozen=True)
class Record:
    path: Path
    label: str  # "stamped fraction 0.5", "stamped fraction 0.01, the reference code's attack", ...
    stamped: float
    cases: int
    command: str  # the command that prints this table again


def _label(settings: dict) -> str:
    parts = [f"stamped fraction {settings['defense_poison_ratio']:g}"]
    recipe = settings.get("attack_recipe", "ours")
    if recipe != "ours":
        parts.append(RECIPES.get(recipe, f"attack {recipe}"))
    if not settings.get("defense_augment", True):
        parts.append("retrained without crop + flip")
    return ", ".join(parts)


def _command(settings: dict, cases: int) -> str:
    flags = [f"--cases {cases}"]
    if settings["defense_poison_ratio"] != 0.5:
        flags.append(f"--poison-ratio {settings['defense_poison_ratio']:g}")
    if settings.get("attack_recipe", "ours") != "ours":
        flags.append(f"--recipe {settings['attack_recipe']}")
    if not settings.get("defense_augment", True):
        flags.append("--no-defense-augment")
    flags.append("--methods " + " ".join(settings["defenses"]))
    return "python bench/defense_cifar10.py " + " ".join(flags) + " --table"


def _finished(record: dict) -> list[dict]:
    return [c for c in record.get("cases", {}).values() if "error" not in c and c.get("census")]


def list_records(folder: Path | None = None) -> tuple[list[Record], list[str]]:
    """The records with at least one finished case with a census, our attack at 0.5 first, then by
    stamped fraction (highest first); and one line per file that could not be read."""
    records, problems = [], []
    for path in sorted(Path(folder or RESULTS_DIR).glob(RECORD_GLOB)):
        try:
            record = json.loads(path.read_text())
            settings, cases = record["settings"], len(_finished(record))
            if cases:
                records.append(Record(path, _label(settings), float(settings["defense_poison_ratio"]), cases,
                                      _command(settings, cases)))
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{path.name}: not a readable record ({type(e).__name__}: {e})")
    return sorted(records, key=lambda r: (r.label != "stamped fraction 0.5", "," in r.label, -r.stamped)), problems


def _row(case: str, method: str, planted: float, census: dict | None, worst_restart: float | None = None,
         closure: float | None = None) -> dict:
    census = census or {}
    return {"case": case, "method": method, "planted ASR": planted, "worst restart": worst_restart,
            "open patterns": census.get("open"), "highest pattern ASR": census.get("worst_asr"),
            "highest pattern": census.get("worst_trigger"), "closure": closure}


def residual_rows(path: Path) -> list[dict]:
    """Per case: the backdoored model, the clean base (the floor: what a model with no backdoor
    answers), then each defense; pixel-SGD's worst restart on the planted trigger kept beside its mean."""
    rows = []
    for c in _finished(json.loads(Path(path).read_text())):
        case = f"{c['trigger']} -> {c['target']}"
        rows.append(_row(case, BEFORE, c["before"]["asr"], c["census"]["before"]))
        rows.append(_row(case, FLOOR, c["floor"], c["census"].get("floor")))
        for method, d in c["defenses"].items():
            census = d.get("census") or {}
            rows.append(_row(case, method, d["after"]["asr"], census.get("after"),
                             d["worst_asr"] if method == "pixel-sgd" else None, census.get("closure")))
    return rows
