"""`python -m mesa sweep`: its arguments, and the command (mesa/lab/cli/main.py adds it to the others)."""
from pathlib import Path

from mesa.errors import MesaError

DEFAULTS_NOTE = ("attack defaults: 3 epochs, lr 0.01, 3% poison, what the small model on CIFAR-10 needed for "
                 "ASR > 0.9 (docs/RESULTS.md); the paper's: --attack-epochs 10 --attack-lr 1e-3 "
                 "--attack-poison-ratio 0.01, or --attack-recipe paper to keep those cases beside ours")


def add_sweep_command(sub, add_common):
    from mesa.lab.sweep.plan import ATTACK_RECIPES, SweepConfig
    from mesa.method import registry
    from mesa.models import TRAINED_HERE

    d = SweepConfig(out="")
    p = sub.add_parser("sweep", help="the paper's experiment over many triggers: resumable, local or on Ray",
                       description="Per case (data x model x trigger x target): fine-tune a clean base into a "
                                   "backdoor, MESA search, pixel-SGD baseline, defenses, census. Every stage is saved "
                                   "and skipped when rerun. " + DEFAULTS_NOTE)
    p.add_argument("--data", nargs="+", default=d.data, help="synthetic, synthetic100, cifar10, cifar100, folder:PATH")
    p.add_argument("--model", nargs="+", default=d.models, dest="models", choices=list(TRAINED_HERE))
    p.add_argument("--triggers", nargs="+", default=d.triggers,
                   help="canonical (the 51 3x3 black-white patterns), binary:A-B, color:A-B[:K], or triggers")
    p.add_argument("--targets", nargs="+", type=int, default=d.targets, help="one for all triggers, or one per trigger")
    p.add_argument("--base", default=None,
                   help="a clean base run to fine-tune (default: the model's shipped base, assets/bases, when its "
                        "classes fit the data, else one trained here for --base-epochs)")
    p.add_argument("--base-epochs", type=int, default=d.base_epochs)
    p.add_argument("--attack-epochs", type=int, default=d.attack_epochs)
    p.add_argument("--attack-lr", type=float, default=d.attack_lr)
    p.add_argument("--attack-poison-ratio", type=float, default=d.attack_poison_ratio)
    p.add_argument("--attack-recipe", default=d.attack_recipe, choices=list(ATTACK_RECIPES),
                   help="paper: the reference code's attack (10 epochs, lr 1e-3, 1%% poison); ours-1pct: ours at "
                        "1%% poison; their cases kept apart")
    p.add_argument("--search-epochs", type=int, default=d.search_epochs)
    p.add_argument("--betas", type=float, nargs="+", default=d.betas)
    p.add_argument("--samples", type=int, default=d.samples, help="MESA triggers sampled per beta to measure")
    p.add_argument("--restarts", type=int, default=d.restarts, help="pixel-SGD baseline restarts")
    p.add_argument("--baseline-steps", type=int, default=d.baseline_steps)
    p.add_argument("--defenses", nargs="+", default=d.defenses, help=", ".join(registry.defense_names()))
    p.add_argument("--defense-epochs", type=int, default=d.defense_epochs)
    p.add_argument("--defense-poison-ratio", type=float, default=d.defense_poison_ratio,
                   help="share of images stamped while retraining; another value is saved beside the default's")
    p.add_argument("--no-defense-augment", dest="defense_augment", action="store_false",
                   help="retrain without crop + flip, as the reference code does (saved beside the default's)")
    p.add_argument("--census", default=d.census, type=lambda v: None if v == "none" else v,
                   help="the trigger family of the census (every trigger's ASR): binary, color or none")
    p.add_argument("--census-samples", type=int, default=None)
    p.add_argument("--census-images", type=int, default=d.census_images)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--parallel", type=int, default=1,
                   help="local: cases at once, in a process pool (worth it on a GPU; on a CPU they share its cores)")
    p.add_argument("--address", default=None, help="ray: an existing cluster (auto or HOST:PORT); default: a local one")
    p.add_argument("--ray-cpus", type=int, default=None, help="ray: CPUs of the local cluster (default: all)")
    p.add_argument("--cpus-per-case", type=float, default=1.0)
    p.add_argument("--gpus-per-case", type=float, default=0.0, help="ray: GPU share per case, e.g. 0.25")
    p.add_argument("--table", action="store_true",
                   help="print the saved table (of this attack recipe and defense variant), run nothing")
    add_common(p, runs=False)
    p.add_argument("--out", default=None, help="the sweep's folder (default: $MESA_RUNS/sweep or ./runs/sweep)")
    p.set_defaults(func=cmd_sweep)


def sweep_config(args):
    """The SweepConfig of the parsed arguments (checked before the machine's turn: mesa/lab/cli/checks.py)."""
    from mesa.lab.sweep.plan import SweepConfig
    from mesa.lab.sweep.run import default_out

    names = set(SweepConfig.__dataclass_fields__)
    return SweepConfig(out=args.out or default_out(), **{k: v for k, v in vars(args).items() if k in names and k != "out"})


def cmd_sweep(args):
    from mesa.lab.sweep.run import ExecutorConfig, run_sweep
    from mesa.lab.sweep.table import table_name

    cfg = sweep_config(args)
    out = cfg.out
    table = Path(out) / f"{table_name(cfg)}.md"
    if args.table:
        if not table.is_file():
            raise MesaError(f"no sweep table at {table}: run the sweep first")
        print(table.read_text(), end="")
        return {"out": out, "table": str(table)}
    ex = ExecutorConfig(args.executor, args.parallel, args.address, args.ray_cpus, args.cpus_per_case,
                        args.gpus_per_case)
    result = run_sweep(cfg, ex, progress=not args.quiet)
    if not args.json:
        print(table.read_text(), end="")
    return {**result, "stages_run": len(result["stages_run"])}
