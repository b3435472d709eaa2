"""The sweep's results table: one row per case, mean and worst rows, the floor, and the paper's
figures beside ours; written as markdown and JSON (atomically) into the sweep's folder."""
import json
import math
from pathlib import Path

from mesa import atomic
from mesa.lab.sweep.plan import SweepConfig, attack_variant, defense_variant, suffix
from mesa.method.registry import inversions, is_per_trigger

# the paper's Table 1 (CIFAR-10, ResNet-18, 51 black-white 3x3 triggers): ASR mean / worst
PAPER = {"label": "paper (CIFAR-10, ResNet-18, 51 triggers)",
         "mean": {"before": 0.987, "mesa:0.9": 0.034, "ensemble": 0.036, "pixel-sgd": 0.105},
         "worst": {"before": 0.924, "mesa:0.9": 0.059, "ensemble": 0.082, "pixel-sgd": 0.514}}


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(head) -> list[str]:
    return [_row(head), "|" + "---|" * len(head)]


def _fmt(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def asr_columns(case: dict, methods: list[str]) -> dict:
    """{column: (mean value, worst value)}: a per-trigger defense's (pixel-SGD's) worst is its worst restart."""
    cols = {"floor": (case["floor"],) * 2, "before": (case["before"]["asr"],) * 2}
    for m in methods:
        d = case["defenses"].get(m)
        if d:
            cols[m] = (d["after"]["asr"], d["worst_asr"])
    return cols


def summarize(cases: list[dict], methods: list[str]) -> dict:
    """{"mean": {column: v}, "worst": {column: v}}: the worst after a defense is the highest ASR;
    before it, as the paper's "above 92%", the weakest backdoor (the lowest)."""
    means, worsts = {}, {}
    for case in cases:
        for col, (mean, worst) in asr_columns(case, methods).items():
            means.setdefault(col, []).append(mean)
            worsts.setdefault(col, []).append(worst)
    return {"mean": {c: sum(v) / len(v) for c, v in means.items()},
            "worst": {c: (min if c == "before" else max)(v) for c, v in worsts.items()}}


def asr_table(cases: list[dict], methods: list[str]) -> list[str]:
    cols = ["floor", "before"] + methods
    lines = _header(["trigger -> target", "floor (clean base)", "before"] + methods)
    for case in cases:
        values = asr_columns(case, methods)
        cells = [f"{case['trigger']} -> {case['target']}"]
        for c in cols:
            mean, worst = values.get(c, (None, None))
            cells.append(f"{_fmt(mean)} (worst restart {_fmt(worst)})" if is_per_trigger(c) and mean is not None
                         else _fmt(mean))
        lines.append(_row(cells))
    summary = summarize(cases, methods)
    for name in ("mean", "worst"):
        lines.append(_row([f"**{name}**"] + [_fmt(summary[name].get(c)) for c in cols]))
    for name in ("mean", "worst"):
        lines.append(_row([f"{PAPER['label']} {name}"] + [_fmt(PAPER[name].get(c)) for c in cols]))
    return lines


def clean_time_table(cases: list[dict], methods: list[str]) -> list[str]:
    lines = _header(["trigger -> target", "clean before"] + [f"after {m}" for m in methods]
                    + ["attack s", "search s", "baseline s", "defenses s"])
    for case in cases:
        d, s = case["defenses"], case["seconds"]
        lines.append(_row([f"{case['trigger']} -> {case['target']}", _fmt(case["before"]["clean_acc"])]
                          + [_fmt(d[m]["after"]["clean_acc"]) if m in d else "" for m in methods]
                          + [f"{s.get(k, 0):.0f}" for k in ("attack", "search", "baseline")]
                          + [f"{sum(v for k, v in s.items() if k.startswith('defense-')):.0f}"]))
    return lines


def census_table(cases: list[dict], methods: list[str]) -> list[str]:
    """Per case: the family's triggers that open the backdoor (ASR >= 0.5) on the clean base, before,
    and after each defense, with the defense's closure (the share of the open ones it closed; none
    when nothing was open)."""
    cases = [c for c in cases if c.get("census")]
    if not cases:
        return []
    lines = _header(["trigger -> target", "open on clean base", "open before (worst ASR)"]
                    + [f"after {m}: open, worst ASR (closure)" for m in methods])
    closures = {m: [] for m in methods}
    for case in cases:
        floor, before = case["census"]["floor"], case["census"]["before"]
        cells = [f"{case['trigger']} -> {case['target']}", f"{floor['open']}/{floor['triggers']}",
                 f"{before['open']}/{before['triggers']} ({_fmt(before['worst_asr'])})"]
        for m in methods:
            report = case["defenses"].get(m, {}).get("census")
            if report and report["closure"] is not None:
                closures[m].append(report["closure"])
            closed = f" ({_fmt(report['closure'])})" if report and report["closure"] is not None else ""
            cells.append(f"{report['after']['open']}, {_fmt(report['after']['worst_asr'])}{closed}" if report else "")
        lines.append(_row(cells))
    lines.append(_row(["**mean closure**", "", ""] + [_fmt(sum(v) / len(v)) if v else "" for v in closures.values()]))
    return lines


def samples_table(cases: list[dict]) -> list[str]:
    """How well each generator's samples trigger the backdoored model (mean ASR, share above 0.5) and
    how much of the valid set they reach: distinct patterns, effective modes, open patterns hit."""
    per_case = [{b["beta"]: b for b in case["search"]} for case in cases]
    betas = sorted({beta for found in per_case for beta in found})
    lines = _header(["trigger -> target"] + [f"beta={b}: mean ASR / share > 0.5 / distinct / modes / open hit"
                                             for b in betas])

    def cell(b: dict) -> str:
        hit = f"{b['hit']} of {b['open']}" if b.get("open") is not None else ""
        modes = f"{b['modes']:.1f}" if b.get("modes") is not None else ""
        return f"{_fmt(b['mean_asr'])} / {_fmt(b['above_half'])} / {b.get('distinct', '')} / {modes} / {hit}"

    for case, found in zip(cases, per_case):
        lines.append(_row([f"{case['trigger']} -> {case['target']}"] + [cell(found[b]) if b in found else "" for b in betas]))
    return lines


def detection_table(cases: list[dict]) -> list[str]:
    """Per case, what each inversion method with its own detection names: its suspect (flagged) and
    the class of its smallest reversed trigger, beside the true target."""
    found = [e for e in inversions().values() if e.detection and any(e.stage in c for c in cases)]
    if not found:
        return []
    lines = _header(["trigger -> target"] + [f"{e.name}: flagged / smallest" for e in found])
    for case in cases:
        cells = [f"{case['trigger']} -> {case['target']}"]
        for e in found:
            d = case.get(e.stage) or {}
            flagged = "none" if d.get("suspect") is None else str(d["suspect"])
            cells.append(f"{flagged} / {d['smallest']}" if "smallest" in d else "")
        lines.append(_row(cells))
    return lines


def group_of(case: dict) -> str:
    return f"{case['data']} / {case['model']}"


def render(results: dict, methods: list[str]) -> str:
    """Markdown: per data/model, the ASR table, clean accuracy and time, the census; failed cases last."""
    done = [c for c in results["cases"].values() if "error" not in c]
    failed = [c for c in results["cases"].values() if "error" in c]
    out = []
    for group in dict.fromkeys(group_of(c) for c in done):
        cases = [c for c in done if group_of(c) == group]
        out += [f"## {group}: {len(cases)} cases", "", "ASR of each case's own trigger (held-out split):", ""]
        out += asr_table(cases, methods) + ["", "Clean accuracy and seconds per stage:", ""]
        out += clean_time_table(cases, methods) + ["", "MESA's samples on the backdoored model:", ""]
        out += samples_table(cases) + [""]
        detected = detection_table(cases)
        out += ["Detection (the class each method names):", "", *detected, ""] if detected else []
        census = census_table(cases, methods)
        family = next(c["census"]["before"]["family"] for c in cases if c.get("census")) if census else ""
        out += [f"Census of every {family} trigger: how many open the backdoor (ASR >= 0.5):", "", *census, ""] \
            if census else []
    if failed:
        out += ["## Failed cases (see cases/KEY/case.log)", ""] + [f"- {c['case']}: {c['error']}" for c in failed]
    return "\n".join(out).rstrip() + "\n"


def table_name(cfg: SweepConfig) -> str:
    """results[-attack variant][-defense variant]: one table per attack recipe and defense variant."""
    return "results" + suffix(attack_variant(cfg), defense_variant(cfg))


# what may differ between two runs of the same sweep folder whose cases share one table
_CASE_SETTINGS = ("data", "models", "triggers", "targets", "defenses")


def _with_earlier_defenses(case: dict, earlier: dict | None) -> dict:
    """A case rerun with fewer methods keeps the defenses an earlier run measured on the same run."""
    if not earlier or "error" in case or earlier.get("run") != case.get("run"):
        return case
    return {**case, "defenses": {**earlier.get("defenses", {}), **case.get("defenses", {})},
            "seconds": {**earlier.get("seconds", {}), **case.get("seconds", {})}}


def write_tables(out, cfg: SweepConfig, cases: dict) -> dict:
    """NAME.json (settings, every case, per-group mean / worst, the paper's) and NAME.md. Cases an
    earlier run of this folder finished with the same settings (other triggers, say) stay in the table,
    and so do the defenses an earlier run measured on a case this run repeats with fewer methods."""
    settings, path = cfg.to_dict(), Path(out) / f"{table_name(cfg)}.json"
    earlier = json.loads(path.read_text()) if path.is_file() else None
    if earlier and all(earlier["settings"].get(k) == v for k, v in settings.items() if k not in _CASE_SETTINGS + ("out",)):
        kept = {k: c for k, c in earlier["cases"].items() if "error" not in c}
        cases = {**kept, **{k: _with_earlier_defenses(c, kept.get(k)) for k, c in cases.items()}}
        settings["defenses"] = list(dict.fromkeys(earlier["settings"]["defenses"] + settings["defenses"]))
    methods = list(settings["defenses"])
    done = [c for c in cases.values() if "error" not in c]
    groups = {g: summarize([c for c in done if group_of(c) == g], methods) for g in dict.fromkeys(map(group_of, done))}
    results = {"settings": settings, "cases": cases, "summary": groups, "paper": PAPER}
    atomic.write_json(path, results)
    atomic.write_bytes(path.with_suffix(".md"), render(results, methods).encode())
    return results
