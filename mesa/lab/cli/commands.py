"""What each `python -m mesa` command does: build its config from the parsed arguments, run the engine
with a progress bar on stderr, and return the result as a dict (mesa/lab/cli/main.py parses and prints)."""
import sys
from dataclasses import fields

from mesa.errors import MesaError


def progress_bar(enabled: bool):
    """A tqdm bar on stderr fed by Progress events; one bar per stage."""
    from tqdm import tqdm

    bars = {}

    def update(p):
        if not enabled:
            return
        bar = bars.get(p.stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[p.stage] = tqdm(total=p.total, desc=p.stage, file=sys.stderr, leave=True, dynamic_ncols=True)
        bar.update(p.step - bar.n)
        bar.set_postfix({k: f"{v:.3f}" for k, v in p.values.items() if isinstance(v, float)}, refresh=False)

    update.close = lambda: [b.close() for b in bars.values()]
    return update


def cmd_attack(args):
    from mesa.method.attack import AttackConfig
    from mesa.lab.pipeline.attack_stage import run_attack

    names = {f.name for f in fields(AttackConfig)}
    cfg = AttackConfig(**{k: v for k, v in vars(args).items() if k in names})
    bar = progress_bar(not args.quiet)
    path, metrics = run_attack(cfg, bar)
    bar.close()
    return {"run": str(path), **metrics}


def cmd_eval(args):
    import torch

    from mesa.data import load_data
    from mesa.device import resolve_device
    from mesa.method.metrics import evaluate
    from mesa.lab.storage.runs import load_run
    from mesa.method.triggers import parse_location, parse_trigger

    device = resolve_device(args.device)
    run = load_run(args.run, device)
    data = load_data(args.data or run.config["data"]).to(device)
    if data.num_classes != run.config["num_classes"] or run.config.get("classes", data.classes) != data.classes:
        raise MesaError(f"{args.data} has classes {data.classes}, not the run's {run.config.get('classes')}")
    trigger = parse_trigger(args.trigger, data.image_size) if args.trigger else run.trigger
    target = run.target if args.target is None else args.target
    with torch.no_grad():
        location = parse_location(args.location or run.config.get("location"))
        metrics = evaluate(run.model, data.test_images, data.test_labels, trigger, target, location)
    return {"run": str(run.path), "trigger": args.trigger or run.config.get("trigger"), "target": target, **metrics}


def cmd_triggers(args):
    from mesa.method.triggers import binary_trigger, canonical_patterns

    patterns = canonical_patterns(args.size)
    if not args.json:
        for n in patterns:
            rows = binary_trigger(n, args.size)[0].int().tolist()
            print(f"{n:5d}  " + " ".join("".join(str(b) for b in row) for row in rows))
    return {"count": len(patterns), "patterns": list(patterns)}


def _stage(args, work):
    """Open the run, then run one stage with a progress bar."""
    from mesa.lab.pipeline.stages import open_run

    ws = open_run(args.run, args.device, target=getattr(args, "target", None))
    bar = progress_bar(not args.quiet)
    try:
        return work(ws, bar)
    finally:
        bar.close()


def cmd_search(args):
    from mesa.method.search import SearchConfig
    from mesa.lab.pipeline.stages import run_search

    cfg = SearchConfig(betas=args.betas, alpha=args.alpha, epochs=args.epochs, noise=args.noise, seed=args.seed,
                       location=args.location, precision=args.precision)
    return _stage(args, lambda ws, bar: run_search(ws, cfg, args.target, args.samples, bar))


def cmd_baseline(args):
    from mesa.method import registry
    from mesa.lab.pipeline.stages import run_baseline

    config = registry.inversion(args.method).config
    for name in ("restarts", "steps"):
        if getattr(args, name) is not None and name not in config.__dataclass_fields__:
            raise MesaError(f"--{name} is not a setting of {args.method}")
    given = {k: v for k, v in vars(args).items() if k in config.__dataclass_fields__ and v is not None}
    cfg = config(**given)
    return _stage(args, lambda ws, bar: run_baseline(ws, cfg, bar))


def cmd_defend(args):
    from mesa.method.census import CensusConfig
    from mesa.method.defense import DefenseConfig
    from mesa.lab.pipeline.stages import run_defense

    cfg = DefenseConfig(method=args.method, epochs=args.epochs, poison_ratio=args.poison_ratio,
                        restarts=args.restarts, seed=args.seed, location=args.location, precision=args.precision)
    census = None if args.census == "none" else CensusConfig(family=args.census, images=args.census_images)
    return _stage(args, lambda ws, bar: run_defense(ws, cfg, bar, census=census))


def cmd_census(args):
    from mesa.method.census import CensusConfig
    from mesa.lab.pipeline.stages import run_census

    cfg = CensusConfig(family=args.family, samples=args.samples, images=args.images, seed=args.seed,
                       exhaustive=args.exhaustive)
    return _stage(args, lambda ws, bar: run_census(ws, cfg, args.defense))


def cmd_detect(args):
    from mesa.method.detection import DetectionConfig
    from mesa.lab.pipeline.stages import run_detection

    cfg = DetectionConfig(beta=args.beta, epochs=args.epochs, seed=args.seed, location=args.location,
                          search=not args.no_search, census_images=args.census_images, method=args.method)
    return _stage(args, lambda ws, bar: run_detection(ws, cfg, bar))


def cmd_import(args):
    from mesa.lab.imports.model_import import ImportConfig, import_model

    names = {f.name for f in fields(ImportConfig)}
    cfg = ImportConfig(**{k: v for k, v in vars(args).items() if k in names})
    path, metrics = import_model(cfg)
    if "warning" in metrics:
        print(f"warning: {metrics['warning']}", file=sys.stderr)
    return {"run": str(path), **metrics}


def cmd_demo(args):
    from dataclasses import replace

    from mesa.lab.pipeline import presets
    from mesa.lab.jobs.tasks import pipeline_work
    from mesa.lab.storage.ready_runs import make_ready_run

    bar = progress_bar(not args.quiet)
    try:
        name = args.preset or (presets.LIVE_DEMO if args.data else presets.CLASSROOM_DEMO)
        if args.ship:
            return {"run": str(make_ready_run(name, on_progress=bar))}
        p = presets.builtin().get(name)
        if p is None:
            raise MesaError(f"no preset {name!r}: use one of {', '.join(presets.builtin())}")
        attack = replace(presets.attack_config(p), out=args.out, device=args.device)
        if args.data:
            attack = replace(attack, data=presets.live_data(args.data))
        out = pipeline_work(attack, presets.search_config(p), presets.defense_configs(p), presets.baseline_config(p),
                            presets.census_config(p))(bar, lambda: False)
    finally:
        bar.close()
    return {"run": out["run"], "attack": out["metrics"],
            "defenses": [{k: d[k] for k in ("method", "before", "after", "worst_asr", "census") if k in d}
                         for d in out["defenses"]]}
