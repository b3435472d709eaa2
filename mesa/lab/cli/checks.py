"""What the CLI checks before it takes the machine's turn (mesa/lab/jobs/machine_lock.py), so a mistyped
command answers at once even while another job holds the machine: the run exists and its
config.json is sound, a target is one of its classes, counts are within their caps, a sweep plans.
Cheap: files are listed and config.json read; no model or data is loaded."""
from dataclasses import fields
from pathlib import Path

from mesa.errors import MesaError


def run_config(run) -> dict:
    """The run's checked config.json (mesa/lab/storage/runs.py), or one line saying why not."""
    from mesa.lab.storage.runs import check_config, read_json

    path = Path(run)
    if not path.is_dir():
        raise MesaError(f"run {path} does not exist (runs are folders under runs/)")
    return check_config(read_json(path / "config.json", "run config"), path)


def _defense_saved(run, method: str) -> None:
    from mesa.lab.storage import artifacts
    from mesa.method.registry import is_per_trigger

    folder = Path(run) / artifacts.FOLDER  # a per-trigger defense's census is its JSON's (its copies are METHOD-I.pt)
    kept = folder / f"{artifacts.method_file(method)}.{'json' if is_per_trigger(method) else 'pt'}"
    if not kept.is_file():
        saved = sorted(p.stem[len("defense-"):] for p in folder.glob("defense-*.json"))
        raise MesaError(f"no defended model saved for {method!r} in {run} (saved: {', '.join(saved) or 'none'}): "
                        f"run `defend --method {method}` first")


def check_first(args) -> None:
    """Every check that needs no model or data; raises MesaError."""
    if getattr(args, "run", None) is not None:
        n = run_config(args.run)["num_classes"]
        if getattr(args, "target", None) is not None and not 0 <= args.target < n:
            raise MesaError(f"target class {args.target} out of range: run {args.run} has classes 0..{n - 1}")
    if args.command == "attack":
        from mesa.method.attack import AttackConfig

        AttackConfig(**{f.name: getattr(args, f.name) for f in fields(AttackConfig) if hasattr(args, f.name)})
    elif args.command == "search":
        from mesa.method.census import MAX_SAMPLES

        if not 1 <= args.samples <= MAX_SAMPLES:
            raise MesaError(f"--samples must be 1..{MAX_SAMPLES}, not {args.samples}")
    elif args.command == "census":
        from mesa.method.census import CensusConfig

        CensusConfig(family=args.family, samples=args.samples, images=args.images, seed=args.seed)
        if args.defense is not None:
            _defense_saved(args.run, args.defense)
    elif args.command == "sweep" and not args.table:
        from mesa.lab.sweep.cli import sweep_config
        from mesa.lab.sweep.plan import plan_cases

        plan_cases(sweep_config(args))

