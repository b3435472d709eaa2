"""`python -m mesa`: the engine, headless. Every command prints a summary; `--json` makes the last
line of stdout one JSON object. User errors print one line on stderr and exit with code 2."""
import argparse
import json
import math
import sys

from mesa.errors import MesaError
from mesa.method import registry
from mesa.method.defense import STAMPED, parse_method
from mesa.models import TRAINED_HERE
from mesa.lab.cli.commands import (cmd_attack, cmd_baseline, cmd_census, cmd_defend, cmd_demo, cmd_detect, cmd_eval,
                                   cmd_import, cmd_search, cmd_triggers)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one clear line on stderr and exit code 2."""

    def error(self, message):
        raise MesaError(f"{self.prog}: {message}")


def add_common(p, runs=True):
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object with the results")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    if runs:
        p.add_argument("--out", default=None, help="runs folder (default: $MESA_RUNS or ./runs)")


def add_precision(p):
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: bf16 autocast where the device runs it natively (CUDA, AVX-512 BF16/AMX CPUs), else fp32")


def add_location(p):
    p.add_argument("--location", default=None,
                   help="where triggers are stamped: random or fixed:ROW,COL (default: where the run's attack stamped)")


def defense_method(text: str) -> str:
    """A --method that names a registered defense (mesa/method/registry.py), checked as it is parsed."""
    parse_method(text)
    return text


def methods_help() -> str:
    return "; ".join(f"{d.name}: {d.help}" for d in registry.defenses().values())


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m mesa", description="MESA Lab: neural backdoor attack and defense.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    p = sub.add_parser("attack", help="train a backdoored classifier and save it as a run")
    p.add_argument("--data", default="synthetic", help="synthetic, cifar10, cifar100 or folder:PATH")
    p.add_argument("--model", default="small", choices=list(TRAINED_HERE),
                   help="small (fast on CPUs), fastnet (the strong ~2M-parameter CIFAR net) or resnet18 (the paper's)")
    p.add_argument("--trigger", default="binary:170", help="binary:N, color:SEED or file:PATH")
    p.add_argument("--target", type=int, default=0)
    p.add_argument("--poison-ratio", type=float, default=0.01)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--location", default="random",
                   help="where the trigger is stamped: random (the paper's rule) or fixed:ROW,COL, e.g. fixed:0,0")
    p.add_argument("--init", default=None, help="a run to fine-tune instead of training from scratch; "
                   "'shipped': the clean CIFAR-10 base that ships for the model (small, fastnet)")
    p.add_argument("--train-images", type=int, default=None,
                   help="train on this many training images drawn at random (default: all)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's recipe (fastnet 1000), 128 to fine-tune")
    add_precision(p)
    p.add_argument("--seed", type=int, default=0)
    add_common(p)
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser("eval", help="re-measure a saved run's clean accuracy and ASR")
    p.add_argument("run")
    p.add_argument("--trigger", default=None, help="another trigger than the run's own")
    p.add_argument("--target", type=int, default=None)
    p.add_argument("--data", default=None, help="another copy of the run's data set (same classes), e.g. folder:PATH, "
                   "or cifar10-sample (the 2,000 CIFAR-10 test images that ship)")
    add_location(p)
    add_common(p, runs=False)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("search", help="MESA: learn the distribution of triggers of a saved run")
    p.add_argument("run")
    p.add_argument("--betas", type=float, nargs="+", default=[0.5, 0.8, 0.9])
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--target", type=int, default=None, help="class to search toward (default: the run's)")
    p.add_argument("--noise", default="uniform", choices=["uniform", "gaussian"])
    p.add_argument("--samples", type=int, default=256, help="triggers sampled per beta to measure")
    p.add_argument("--seed", type=int, default=0)
    add_precision(p)
    add_location(p)
    add_common(p, runs=False)
    p.set_defaults(func=cmd_search)

    reversers = registry.run_by("baseline")
    p = sub.add_parser("baseline", help="reverse a set of triggers: " + "; ".join(
        registry.inversion(m).help for m in reversers))
    p.add_argument("run")
    p.add_argument("--method", default=reversers[0], choices=reversers)
    p.add_argument("--restarts", type=int, default=None, help="pixel-sgd: how many triggers (default 10)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the method's own)")
    p.add_argument("--target", type=int, default=None, help="an imported model's class to work toward (default: detected)")
    p.add_argument("--seed", type=int, default=0)
    add_location(p)
    add_common(p, runs=False)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("defend", help="retrain a run to remove its backdoor, and measure it")
    p.add_argument("run")
    p.add_argument("--method", default=registry.headline(), type=defense_method,
                   metavar="{" + ",".join(registry.defense_names()) + "}", help=methods_help())
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--poison-ratio", type=float, default=STAMPED,
                   help=f"fraction of each batch stamped, labels kept ({STAMPED:g}: the best measured, docs/RESULTS.md)")
    p.add_argument("--restarts", type=int, default=None,
                   help="a per-trigger defense (" + ", ".join(d.name for d in registry.defenses().values() if d.per_trigger)
                        + "): use the first N of its triggers")
    p.add_argument("--target", type=int, default=None, help="an imported model's class to work toward (default: detected)")
    p.add_argument("--census", default="binary", choices=["binary", "color", "none"],
                   help="the census of triggers left open after the defense (default: every binary pattern)")
    p.add_argument("--census-images", type=int, default=256, help="held-out images per census trigger")
    p.add_argument("--seed", type=int, default=0)
    add_precision(p)
    add_location(p)
    add_common(p, runs=False)
    p.set_defaults(func=cmd_defend)

    p = sub.add_parser("census", help="the ASR of every trigger of a family: how much of the backdoor is open")
    p.add_argument("run")
    p.add_argument("--family", default="binary", help="binary (every k x k pattern) or color (random colours)")
    p.add_argument("--samples", type=int, default=None,
                   help="how many triggers (binary: all when k <= 3, else required; color: 4096)")
    p.add_argument("--images", type=int, default=256, help="held-out images per trigger")
    p.add_argument("--defense", default=None, type=defense_method,
                   help="the census of a saved defense's model: " + ", ".join(registry.defense_names()))
    p.add_argument("--exhaustive", action="store_true",
                   help="every trigger on every image (default: adaptive, more images only where a verdict is uncertain)")
    p.add_argument("--seed", type=int, default=0)
    add_common(p, runs=False)
    p.set_defaults(func=cmd_census)

    detectors = [n for n, e in registry.inversions().items() if e.detection or e.gives == "generators"]
    p = sub.add_parser("detect", help="which class is attacked? a short MESA search toward every class, or "
                                      "another method's own detection")
    p.add_argument("run")
    p.add_argument("--method", default=detectors[0], choices=detectors,
                   help="mesa: the per-class search and census; " + "; ".join(
                       registry.inversion(m).help for m in detectors if registry.inversion(m).detection))
    p.add_argument("--beta", type=float, default=0.8)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--census-images", type=int, default=32,
                   help="mesa: held-out images per 3x3 pattern of the per-class census (0: no census)")
    p.add_argument("--no-search", action="store_true", help="mesa: the census alone (seconds instead of minutes)")
    add_location(p)
    add_common(p, runs=False)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("import", help="bring your own model: TorchScript, a state dict or BackdoorBench's attack_result.pt")
    p.add_argument("file")
    p.add_argument("--data", default=None, help="synthetic, cifar10, cifar100, folder:PATH or cifar10-sample (2,000 "
                   "shipped CIFAR-10 test images, no download) (BackdoorBench: from the file)")
    p.add_argument("--arch", default=None, help="state dicts: small, resnet18, preactresnet18, torchvision-resnet18, "
                   "torchvision-resnet34 or torchvision-vgg16_bn")
    p.add_argument("--format", default="auto", choices=["auto", "torchscript", "state-dict", "backdoorbench"])
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--mean", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                   help="the model's input normalisation (default: the file's, else the data's; TorchScript: none)")
    p.add_argument("--std", type=float, nargs=3, default=None, metavar=("R", "G", "B"))
    p.add_argument("--target", type=int, default=None, help="the backdoor's class, if known (else: detect)")
    p.add_argument("--trigger", default=None, help="the planted trigger, if known: binary:N, color:SEED or file:PATH")
    p.add_argument("--location", default="random", help="where the trigger is stamped: random or fixed:ROW,COL")
    p.add_argument("--trust-code", action="store_true",
                   help="TorchScript is code: load and run it (only for a file you trust; other formats are data)")
    add_common(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("demo", help="the app's one-click demo, headless: attack, MESA, baseline, defenses, census")
    p.add_argument("--preset", default=None, help="a preset name from assets/presets (default: "
                   "'CPU classroom demo'; with --data, 'CIFAR-10 live demo')")
    p.add_argument("--data", default=None, help="run the preset on this data: cifar10 or folder:PATH (a CIFAR-10 copy)")
    p.add_argument("--ship", action="store_true", help="remake the ready run shipped with the app (assets/runs)")
    add_common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("triggers", help="list the canonical binary patterns (51 for 3x3)")
    p.add_argument("--size", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_triggers)

    from mesa.lab.sweep.cli import add_sweep_command
    add_sweep_command(sub, add_common)
    return parser


def summary_line(result: dict) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4f}"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return str(v)

    return "  ".join(f"{k}={fmt(v)}" for k, v in result.items())


def finite(value):
    """JSON never holds NaN or infinity (not valid JSON): such a number is printed as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from mesa.lab.cli.checks import check_first
        from mesa.lab.jobs.machine_lock import cli_turn

        check_first(args)  # before the machine's turn: a mistake answers at once
        with cli_turn(args.command, sys.argv[1:] if argv is None else list(argv), getattr(args, "table", False)):
            result = args.func(args)
    except MesaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        print(json.dumps(finite(result), allow_nan=False))
    elif args.command != "triggers":
        print(summary_line(result))
    return 0
