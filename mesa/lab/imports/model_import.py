"""Bring your own model: turn a classifier trained elsewhere into an ordinary run, trigger and target
unknown. Three formats: a state dict of a named architecture (.safetensors, or .pt/.pth read with
weights_only=True), BackdoorBench's `attack_result.pt`, and a TorchScript program.

Nothing is unpickled that needs code: a file that does is refused, saying how to re-save it. A
TorchScript program is code: it runs only with trust_code (the CLI's --trust-code), never from an
upload. The app's import takes the machine's job lock like every heavy job. The model is wrapped
with its normalisation so our images and triggers stay in [0, 1], and its clean accuracy on the
data's test split is measured at once (near chance: wrong data, classes or normalisation). The run
is written whole or not at all (runs.save_run).
"""
import io
import math
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mesa.lab.imports import backdoorbench
from mesa.data import ImageData, load_data
from mesa.device import resolve_device
from mesa.errors import MesaError
from mesa.method.metrics import evaluate, predict
from mesa.lab.jobs.machine_lock import machine_turn
from mesa.lab.imports.model_files import read_model_file, sha256, state_dict_of
from mesa.models import ARCHITECTURES, Classifier, build_model
from mesa.lab.storage.runs import TORCHSCRIPT, save_run
from mesa.method.triggers import parse_location, parse_trigger

MAX_BYTES = 2 << 30
MAX_CLASSES = 100_000
MAX_UPLOAD_BYTES = 200 << 20  # the app's upload limit, Streamlit's own default (server.maxUploadSize)
# BackdoorBench's test-time Normalize per data set (utils/.../dataset_and_transform_generate.py)
BACKDOORBENCH_NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "gtsrb": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


@dataclass
class ImportConfig:
    file: str
    data: str | None = None  # None: BackdoorBench's clean_data, mapped to ours
    arch: str | None = None  # state dicts: a name of models.ARCHITECTURES
    num_classes: int | None = None
    mean: tuple | None = None  # the model's input normalisation (default: see _normalisation)
    std: tuple | None = None
    target: int | None = None  # the backdoor's class, when the user knows it
    trigger: str | None = None  # the planted trigger, when the user knows it
    location: str = "random"
    format: str = "auto"
    out: str | None = None
    device: str = "auto"
    trust_code: bool = False  # TorchScript: run the file's own code (the CLI's --trust-code)


def _output_classes(state: dict) -> int | None:
    """Rows of the last 2-D weight: the class count of every architecture we name."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    return weights[-1].shape[0] if weights else None


def _class_count(n: int, what: str) -> int:
    if not 2 <= n <= MAX_CLASSES:
        raise MesaError(f"{what} {n} is out of range 2..{MAX_CLASSES}")
    return n


def _three(values, what: str, positive: bool = False) -> tuple:
    """Normalisation values: 3 finite numbers (R G B), positive for a std."""
    values = tuple(float(v) for v in values)
    if len(values) != 3 or not all(math.isfinite(v) and (v > 0 or not positive) for v in values):
        kind = "finite positive" if positive else "finite"
        raise MesaError(f"{what} takes 3 {kind} numbers (R G B), got {list(values)[:5]}")
    return values


def _fit(arch: str, state: dict, num_classes: int, mean, std, what: str) -> Classifier:
    if arch not in ARCHITECTURES:
        raise MesaError(f"unknown architecture {arch!r}: use {', '.join(ARCHITECTURES)}")
    model = build_model(arch, num_classes, mean, std)
    try:
        result = model.body.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shapes differ: another width or class count
        detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e).splitlines()[0])
        raise MesaError(f"{what} does not fit {arch} with {num_classes} classes: {detail[:200]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise MesaError(f"{what} is not a {arch} state dict: {len(result.missing_keys)} of its weights missing "
                        f"(e.g. {', '.join(result.missing_keys[:2]) or '-'}), {len(result.unexpected_keys)} unknown "
                        f"(e.g. {', '.join(result.unexpected_keys[:2]) or '-'}); pick its --arch")
    return model


@dataclass
class Loaded:
    model: Classifier
    arch: str
    format: str
    extra: dict  # format-specific facts for the run's source record
    poisoned: dict | None = None  # BackdoorBench: the attacker's poisoned test images, when the file has them


def _build(cfg: ImportConfig, path: Path, fmt: str, obj, data: ImageData, mean, std) -> Loaded:
    if fmt == TORCHSCRIPT:
        if not any(True for _ in obj.parameters()):
            raise MesaError(f"{path.name} has no weights (parameters): nothing to detect a backdoor in or defend")
        return Loaded(Classifier(obj, mean, std), TORCHSCRIPT, TORCHSCRIPT, {})
    if fmt == "backdoorbench":
        arch, classes = backdoorbench.architecture(obj, cfg.arch, cfg.num_classes)
        _class_count(classes, "the file's num_classes")
        backdoorbench.check_image_size(obj, data.image_size)
        model = _fit(arch, state_dict_of(obj["model"], path), classes, mean, std, f"{path.name}'s model")
        poisoned, note = backdoorbench.poisoned_images(obj, path, data.image_size)
        extra = {"model_name": str(obj["model_name"]), "clean_data": str(obj.get("clean_data")), **note}
        return Loaded(model, arch, "backdoorbench", extra, poisoned)
    state = obj
    if "mean" in state and all(k.startswith("body.") for k in state if k not in ("mean", "std")):
        state = {k[5:]: v for k, v in state.items() if k.startswith("body.")}  # a MESA Lab run's model.pt
    if not cfg.arch:
        raise MesaError(f"{path.name} is a state dict: say which architecture with --arch "
                        f"({', '.join(ARCHITECTURES)})")
    classes = cfg.num_classes or _output_classes(state) or data.num_classes
    return Loaded(_fit(cfg.arch, state, classes, mean, std, path.name), cfg.arch, "state-dict", {})


def _normalisation(cfg: ImportConfig, data: ImageData, fmt: str, obj):
    """The user's; else the file's own (BackdoorBench's table, a MESA Lab model.pt's buffers); else
    identity for TorchScript (it usually carries its own preprocessing), the data's statistics for
    a bare network."""
    clean_data = str(obj.get("clean_data", "")).lower() if fmt == "backdoorbench" else None
    if clean_data in BACKDOORBENCH_NORMALIZATION:
        default = BACKDOORBENCH_NORMALIZATION[clean_data]
    elif fmt == "state-dict" and "mean" in obj and "std" in obj:
        default = (_three(obj["mean"].flatten().tolist(), "the file's mean"),
                   _three(obj["std"].flatten().tolist(), "the file's std", positive=True))
    elif fmt == TORCHSCRIPT:
        default = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    else:
        default = (data.mean, data.std)
    return tuple(cfg.mean or default[0]), tuple(cfg.std or default[1])


def import_model(cfg: ImportConfig, data: ImageData | None = None, origin: str | None = None) -> tuple[Path, dict]:
    """Import a model file as a run; returns (run path, metrics with clean_acc and any warning).
    `origin` names where the file came from when its path is a temporary one (an upload)."""
    path = Path(cfg.file).expanduser()
    if not path.is_file():
        raise MesaError(f"model file {path} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise MesaError(f"model file {path} is over {MAX_BYTES >> 30} GiB")
    location = parse_location(cfg.location)
    if cfg.num_classes is not None:
        _class_count(cfg.num_classes, "--num-classes")
    cfg = replace(cfg, mean=None if cfg.mean is None else _three(cfg.mean, "--mean"),
                  std=None if cfg.std is None else _three(cfg.std, "--std", positive=True))
    fmt, obj = read_model_file(path, cfg.format, cfg.trust_code)
    spec = cfg.data or (backdoorbench.data_spec(obj) if fmt == "backdoorbench" else None)
    if not spec:
        raise MesaError("say which data the model was trained on: --data synthetic|cifar10|cifar100|folder:PATH")
    data = data if data is not None and data.name == spec else load_data(spec)
    mean, std = _normalisation(cfg, data, fmt, obj)
    loaded = _build(cfg, path, fmt, obj, data, mean, std)
    device = resolve_device(cfg.device)
    model = loaded.model.to(device).eval()
    num_classes = _check_classes(model, data, cfg.num_classes, path, device)
    if cfg.target is not None and not 0 <= cfg.target < num_classes:
        raise MesaError(f"target class {cfg.target} out of range 0..{num_classes - 1}")
    trigger = parse_trigger(cfg.trigger, data.image_size) if cfg.trigger else None
    test_x, test_y = data.test_images.to(device), data.test_labels.to(device)
    metrics = evaluate(model, test_x, test_y, trigger, cfg.target, location)
    chance = 1 / num_classes
    if metrics["clean_acc"] < min(0.5, 2 * chance):
        metrics["warning"] = (f"clean accuracy {metrics['clean_acc']:.3f} is near chance ({chance:.3f}): "
                              "wrong data, class order or normalisation (--mean/--std)?")
    files = {}
    if loaded.poisoned is not None:
        metrics.update(_attacker_asr(model, loaded.poisoned, device))
        files["poisoned.pt"] = loaded.poisoned
    if loaded.arch == TORCHSCRIPT:
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(model.body.cpu(), buffer)
        files["model.ts"] = buffer.getvalue()
    config = {"data": spec, "model": loaded.arch, "trigger": cfg.trigger, "target": cfg.target,
              "location": cfg.location, "num_classes": num_classes, "classes": data.classes, "mean": list(mean),
              "std": list(std), "image_size": data.image_size,
              "source": {"file": origin or str(path.resolve()), "name": path.name, "format": loaded.format,
                         "sha256": sha256(path), "bytes": path.stat().st_size, **loaded.extra}}
    stem = "".join(c for c in path.stem if c.isalnum())[:20] or "model"
    name = f"{spec.split(':')[0]}-import-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = save_run(cfg.out, config, model.cpu(), trigger, metrics, [], name=name, files=files)
    return run, metrics


def import_upload(raw: bytes, filename: str, cfg: ImportConfig, limit: int = MAX_UPLOAD_BYTES,
                  on_wait=lambda message: None) -> tuple[Path, dict]:
    """Import uploaded bytes (the app): kept in a private temporary file only while importing, so a
    failed import leaves nothing behind. No code from an upload is run (trust_code is off), and the
    import waits its turn on the machine (on_wait says for whom)."""
    if len(raw) > limit:
        raise MesaError(f"{filename} is {len(raw) / 2**20:.0f} MiB: the upload limit is {limit / 2**20:.0f} MiB "
                        "(import bigger files with python -m mesa import)")
    suffix = Path(filename).suffix if Path(filename).suffix in (".pt", ".pth", ".ts", ".safetensors", ".bin") else ".pt"
    with tempfile.TemporaryDirectory(prefix="mesa-upload-") as folder:
        path = Path(folder) / (("".join(c for c in Path(filename).stem if c.isalnum() or c in "-_") or "model") + suffix)
        path.write_bytes(raw)
        with machine_turn(f"MESA Lab app: import {path.name}", on_wait):
            return import_model(replace(cfg, file=str(path), trust_code=False), origin=f"upload:{filename}")


def _check_classes(model, data: ImageData, expected: int | None, path: Path, device) -> int:
    """The model's class count, from its output on two test images (a TorchScript program may fail, or
    return anything)."""
    try:
        with torch.no_grad():
            out = model(data.test_images[:2].to(device).float() / 255)
    except (RuntimeError, TypeError, ValueError) as e:
        last = [line for line in str(e).splitlines() if line.strip()][-1:] or [type(e).__name__]
        raise MesaError(f"{path.name} fails on the data's images: {last[0].strip()[:200]}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        what = f"a {tuple(out.shape)} tensor" if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        raise MesaError(f"{path.name} outputs {what}, not one row of class scores per image")
    classes = out.shape[1]
    if expected is not None and expected != classes:
        raise MesaError(f"--num-classes {expected} does not match the model, which has {classes} outputs")
    if classes != data.num_classes:
        raise MesaError(f"the model has {classes} classes but {data.name} has {data.num_classes}: "
                        "pick the data it was trained on (--data)")
    return classes


def _attacker_asr(model, poisoned: dict, device) -> dict:
    """ASR of the attacker's own poisoned test images: those not already of their backdoor label."""
    x, bd, orig = poisoned["images"].to(device), poisoned["labels"].to(device), poisoned["original"].to(device)
    keep = bd != orig
    if not keep.any():
        return {}
    hits = predict(model, x[keep]) == bd[keep]
    return {"attacker_asr": hits.float().mean().item(), "attacker_images": int(keep.sum()),
            "attacker_targets": torch.unique(bd[keep]).tolist()}
