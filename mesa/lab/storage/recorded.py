"""The CIFAR-10 results measured by bench/defense_cifar10.py and shipped in docs/results
(cifar10-small-*.json), read into one row per case and method: what each defense leaves on the planted
trigger and in the census of all 512 black-white patterns. The app shows them beside the live demo,
whose embedded data does not show MESA's edge over the single reversed trigger (docs/RESULTS.md)."""
import json
from dataclasses import dataclass
from pathlib import Path

from mesa.method.defense import STAMPED
from mesa.method.intervals import noise_max, overlap, rate_ci, sign_test
from mesa.method import registry
from mesa.method.registry import is_per_trigger
from mesa.resources import resource

RESULTS_DIR = resource("results")
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
    if settings.get("record_note"):  # set when the record was copied here: what sets it apart from the others
        parts.append(settings["record_note"])
    return ", ".join(parts)


def _command(settings: dict, cases: int) -> str:
    if settings.get("record_command"):  # set when the record was made otherwise than by the benchmark
        return settings["record_command"]
    flags = [f"--cases {cases}"]
    if settings["defense_poison_ratio"] != STAMPED:
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
    """The records with at least one finished case with a census, our attack at the default stamped
    fraction first, then by stamped fraction (highest first); and one line per file that could not be read."""
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
    return sorted(records, key=lambda r: (r.label != _label({"defense_poison_ratio": STAMPED}), "," in r.label,
                                          -r.stamped)), problems


def planted_images(case: dict) -> int | None:
    """The held-out images (outside the target class) the planted trigger was measured on. Records
    before the counts were kept: the one count that makes every single-model ASR of the case a whole
    number of images (1,791 on CIFAR-10 for class 0); a per-trigger defense's is a mean over restarts, left out."""
    if case["before"].get("asr_images"):
        return case["before"]["asr_images"]
    rates = [case["before"]["asr"]] + [d["after"]["asr"] for m, d in case["defenses"].items() if not is_per_trigger(m)]
    return next((n for n in range(100, 20001) if all(abs(r * n - round(r * n)) < 1e-3 for r in rates)), None)


def _row(case: str, method: str, planted: float, census: dict | None, n_planted: int | None, n_census: int,
         worst_restart: float | None = None, closure: float | None = None) -> dict:
    """One row; each ASR with its 95% Wilson interval (pixel-SGD's planted: the mean of restarts
    each on the same images, so one restart's interval). "noise max": the highest pattern that
    noise alone gives a census whose 512 patterns all sat at its mean ASR."""
    census = census or {}
    highest = census.get("worst_asr")
    mean = census.get("mean_asr")
    return {"case": case, "method": method, "planted ASR": planted, "planted CI": rate_ci(planted, n_planted),
            "worst restart": worst_restart, "open patterns": census.get("open"), "highest pattern ASR": highest,
            "highest CI": rate_ci(highest, n_census), "highest pattern": census.get("worst_trigger"),
            "noise max": None if mean is None else noise_max(mean, n_census, census.get("triggers", 512)),
            "closure": closure}


def residual_rows(path: Path) -> list[dict]:
    """Per case: the backdoored model, the clean base (the floor: what a model with no backdoor
    answers), then each defense; pixel-SGD's worst restart on the planted trigger kept beside its mean."""
    record = json.loads(Path(path).read_text())
    n_census = int(record["settings"].get("census_images") or 256)
    rows = []
    for c in _finished(record):
        case, n = f"{c['trigger']} -> {c['target']}", planted_images(c)
        rows.append(_row(case, BEFORE, c["before"]["asr"], c["census"]["before"], n, n_census))
        rows.append(_row(case, FLOOR, c["floor"], c["census"].get("floor"), n, n_census))
        for method, d in c["defenses"].items():
            census = d.get("census") or {}
            rows.append(_row(case, method, d["after"]["asr"], census.get("after"), n, n_census,
                             d["worst_asr"] if is_per_trigger(method) else None, census.get("closure")))
    return rows


def contrast(rows: list[dict], a: str, b: str, metric: str = "highest pattern ASR") -> dict:
    """Method a against b over the cases both have: per case whether the intervals are apart (a
    difference read as significant), and the exact sign test over cases."""
    ci = {"highest pattern ASR": "highest CI", "planted ASR": "planted CI"}[metric]
    by = {(r["case"], r["method"]): r for r in rows}
    cases = [c for c in dict.fromkeys(r["case"] for r in rows) if (c, a) in by and (c, b) in by]
    apart = [c for c in cases if not overlap(by[c, a][ci], by[c, b][ci])]
    test = sign_test([by[c, a][metric] for c in cases], [by[c, b][metric] for c in cases])
    return {"cases": len(cases), "apart": apart, **test}


def contrast_pairs(methods: list[str]) -> list[tuple[str, str]]:
    """The contrasts worth reading in a record: each defense made from another inversion method (one
    reversed trigger, per restart or per class) against each default defense made from MESA's distribution."""
    made_by = {m: registry.defense(m)[0].uses for m in methods}
    spread = {n for n, e in registry.inversions().items() if e.gives == "generators"}
    ours = [m for m in methods if made_by[m] in spread and m in registry.default_defenses()]
    return [(a, b) for a in methods if made_by[a] is not None and made_by[a] not in spread for b in ours]
