"""`python -m mesa`: the engine, headless. Every command prints a summary; `--json` makes the last
line of stdout one JSON object. User errors print one line on stderr and exit with code 2."""
import argparse
import json
import sys
from dataclasses import fields

from .errors import MesaError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one clear line on stderr and exit code 2."""

    def error(self, message):
        raise MesaError(f"{self.prog}: {message}")


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


def add_common(p, runs=True):
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object with the results")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    if runs:
        p.add_argument("--out", default=None, help="runs folder (default: $MESA_RUNS or ./runs)")


def cmd_attack(args):
    from .attack import AttackConfig, run_attack

    names = {f.name for f in fields(AttackConfig)}
    cfg = AttackConfig(**{k: v for k, v in vars(args).items() if k in names})
    bar = progress_bar(not args.quiet)
    path, metrics = run_attack(cfg, bar)
    bar.close()
    return {"run": str(path), **metrics}


def cmd_eval(args):
    import torch

    from .data import load_data
    from .device import resolve_device
    from .metrics import evaluate
    from .runs import load_run
    from .triggers import parse_trigger

    device = resolve_device(args.device)
    run = load_run(args.run, device)
    data = load_data(run.config["data"]).to(device)
    trigger = parse_trigger(args.trigger, data.image_size) if args.trigger else run.trigger
    target = run.target if args.target is None else args.target
    with torch.no_grad():
        metrics = evaluate(run.model, data.test_images, data.test_labels, trigger, target)
    return {"run": str(run.path), "trigger": args.trigger or run.config.get("trigger"), "target": target, **metrics}


def cmd_triggers(args):
    from .triggers import binary_trigger, canonical_patterns

    patterns = canonical_patterns(args.size)
    if not args.json:
        for n in patterns:
            rows = binary_trigger(n, args.size)[0].int().tolist()
            print(f"{n:5d}  " + " ".join("".join(str(b) for b in row) for row in rows))
    return {"count": len(patterns), "patterns": list(patterns)}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m mesa", description="MESA Lab: neural backdoor attack and defense.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    p = sub.add_parser("attack", help="train a backdoored classifier and save it as a run")
    p.add_argument("--data", default="synthetic", help="synthetic, cifar10, cifar100 or folder:PATH")
    p.add_argument("--model", default="small", choices=["small", "resnet18"])
    p.add_argument("--trigger", default="binary:170", help="binary:N, color:SEED or file:PATH")
    p.add_argument("--target", type=int, default=0)
    p.add_argument("--poison-ratio", type=float, default=0.01)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--init", default=None, help="a run to fine-tune instead of training from scratch")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    add_common(p)
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser("eval", help="re-measure a saved run's clean accuracy and ASR")
    p.add_argument("run")
    p.add_argument("--trigger", default=None, help="another trigger than the run's own")
    p.add_argument("--target", type=int, default=None)
    add_common(p, runs=False)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("triggers", help="list the canonical binary patterns (51 for 3x3)")
    p.add_argument("--size", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_triggers)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        result = args.func(args)
    except MesaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        print(json.dumps(result))
    elif args.command != "triggers":
        print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0
