"""The defenses a run can be offered now, read from the registry (mesa/method/registry.py) and from
what the run has saved: a family offers one instance per saved parameter (mesa:BETA, one per beta of
the search), and a defense whose inversion method has not run yet says what it still needs."""
from pathlib import Path

from mesa.lab.storage import artifacts
from mesa.lab.storage.runs import read_json
from mesa.method import registry


def saved_inversions(run_path) -> dict[str, dict | None]:
    """{inversion method: its saved JSON (mesa/STAGE.json), None when it has not run on this run}."""
    folder = Path(run_path) / artifacts.FOLDER
    return {name: read_json(folder / f"{e.stage}.json", f"{e.stage} results") if (folder / f"{e.stage}.json").is_file()
            else None for name, e in registry.inversions().items()}


def defense_offers(run_path, has_trigger: bool = True) -> tuple[list[str], dict[str, str]]:
    """(every defense as typed, in the registry's order; {defense: what it still needs})."""
    saved = saved_inversions(run_path)
    methods, missing = [], {}
    for d in registry.defenses().values():
        made = saved.get(d.uses) if d.uses else None
        names = d.choices(made or {}) if d.choices else [d.name]
        methods += names
        if d.uses and made is None:
            inv = registry.inversion(d.uses)
            missing.update({m: f"needs {inv.output}: run {inv.name} (MESA page)" for m in names})
        if d.needs_trigger and not has_trigger:
            missing.update({m: "needs the planted trigger, which this run does not know" for m in names})
    return methods, missing
