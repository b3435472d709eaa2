"""One sweep case at a time, the paper's protocol: a clean base per data/model (trained once,
reused), the attack fine-tunes it, then MESA's search, the pixel-SGD baseline, each defense and
the census. Every stage is saved in the case's folder as it finishes, keyed by the settings it
depends on (its own and its inputs'): a rerun skips what is done, a changed setting redoes only
the stages it reaches, and a failure is recorded in the case without stopping the sweep.

    OUT/bases/DATA-MODEL/base.json        the clean base (its run folder is under OUT/runs/)
    OUT/cases/KEY/STAGE.json              {"key": settings, "result": ..., "seconds": ...}
    OUT/cases/KEY/case.log                the case's own log; error.json when it failed
"""
import functools
import hashlib
import json
import time
import traceback
from pathlib import Path

from mesa import atomic
from mesa.method.attack import AttackConfig
from mesa.lab.pipeline.attack_stage import run_attack
from mesa.method.census import CensusConfig, summarize
from mesa.data import cached_data
from mesa.method import registry
from mesa.method.defense import DefenseConfig
from mesa.method.metrics import attack_success_rate, evaluate
from mesa.lab.storage.runs import load_run, read_json
from mesa.errors import MesaError
from mesa.lab.storage.bases import base_identity, has_shipped_base, shipped_base
from mesa.lab.pipeline.stages import census_of, open_run, run_census, run_defense, run_inversion
from mesa.lab.sweep.plan import Case, SweepConfig, attack_variant, defense_variant, slug, suffix
from mesa.method.triggers import parse_trigger


def digest(key: dict) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


class Log:
    """A case's log file, with a progress callback that writes at most every 30 s per stage."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.last = {}

    def __call__(self, line: str):
        with self.path.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    def progress(self, p):
        if p.step == p.total or time.time() - self.last.get(p.stage, 0) > 30:
            self.last[p.stage] = time.time()
            values = {k: round(v, 3) for k, v in p.values.items() if isinstance(v, float)}
            self(f"  {p.stage} {p.step}/{p.total} {values}")


class Stages:
    """A folder of saved stages: `run(name, key, work)` returns the saved result when its key
    matches, else runs `work()` and saves what it returns."""

    def __init__(self, folder: Path, log: Log):
        self.folder, self.log, self.ran, self.seconds = folder, log, [], {}

    def saved(self, name: str, key: dict) -> dict | None:
        path = self.folder / f"{name}.json"
        marker = json.loads(path.read_text()) if path.is_file() else None
        return marker if marker and marker.get("key") == key else None

    def run(self, name: str, key: dict, work):
        marker = self.saved(name, key)
        if marker is None:
            self.log(f"{name}: running")
            start = time.time()
            result = work()
            marker = {"key": key, "result": result, "seconds": round(time.time() - start, 1),
                      "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            atomic.write_json(self.folder / f"{name}.json", marker)
            self.ran.append(name)
            self.log(f"{name}: done in {marker['seconds']} s")
        self.seconds[name] = marker["seconds"]
        return marker["result"]


def base_key(cfg: SweepConfig, data: str, model: str) -> dict:
    return {"data": data, "model": model, "epochs": cfg.base_epochs, "batch_size": cfg.batch_size, "seed": cfg.seed}


def run_base(cfg: SweepConfig, data: str, model: str) -> dict:
    """The clean base model of one data/model pair: {"run", "metrics", "key", "ran"}: the given base
    (--base), else the one shipped for the model when its classes fit the data, else trained here."""
    given = Path(cfg.base) if cfg.base else None
    if given is None and has_shipped_base(model):
        try:
            given = shipped_base(model, cached_data(data).classes)
        except MesaError:  # data that cannot be read: the base stage below fails on it, in its log
            given = None
    if given is not None:
        key = base_identity(given, model)
        return {"run": str(given), "metrics": read_json(given / "metrics.json", "base metrics", {}),
                "key": digest(key), "ran": []}
    folder = Path(cfg.out) / "bases" / slug(data, model)
    log = Log(folder / "base.log")
    stages = Stages(folder, log)
    key = base_key(cfg, data, model)
    attack = AttackConfig(data=data, model=model, poison_ratio=0.0, epochs=cfg.base_epochs, batch_size=cfg.batch_size,
                          seed=cfg.seed, device=cfg.device, out=str(Path(cfg.out) / "runs"))
    try:
        result = stages.run("base", key, lambda: _attack(attack, log))
    except Exception as e:
        log(f"FAILED: {type(e).__name__}: {e}\n{traceback.format_exc()}")
        raise
    return {**result, "key": digest(key), "ran": stages.ran}


def _attack(attack: AttackConfig, log: Log) -> dict:
    path, metrics = run_attack(attack, log.progress, data=cached_data(attack.data))
    return {"run": str(path), "metrics": metrics}


def run_case(cfg: SweepConfig, case: Case, base: dict) -> dict:
    """Every stage of one case; never raises: a failure comes back as {"error": ...} and in error.json."""
    folder = Path(cfg.out) / "cases" / (case.key + suffix(attack_variant(cfg)))
    log = Log(folder / "case.log")
    stages = Stages(folder, log)
    start = time.time()
    try:
        result = _case_stages(cfg, case, base, stages, log)
        (folder / "error.json").unlink(missing_ok=True)
    except Exception as e:  # noqa: BLE001 - one case's failure, whatever it is, must not stop the sweep
        log(f"FAILED: {type(e).__name__}: {e}\n{traceback.format_exc()}")
        result = {"error": f"{type(e).__name__}: {e}"}
        atomic.write_json(folder / "error.json", result)
    return {"case": case.key, "data": case.data, "model": case.model, "trigger": case.trigger, "target": case.target,
            **result, "ran": stages.ran, "seconds": stages.seconds, "wall": round(time.time() - start, 1)}


def _case_stages(cfg: SweepConfig, case: Case, base: dict, stages: Stages, log: Log) -> dict:
    attack_key = {"base": base["key"], "trigger": case.trigger, "target": case.target, "epochs": cfg.attack_epochs,
                  "lr": cfg.attack_lr, "poison_ratio": cfg.attack_poison_ratio, "batch_size": cfg.batch_size,
                  "seed": cfg.seed}
    attack = AttackConfig(data=case.data, model=case.model, trigger=case.trigger, target=case.target,
                          poison_ratio=cfg.attack_poison_ratio, epochs=cfg.attack_epochs, init=base["run"],
                          lr=cfg.attack_lr, batch_size=cfg.batch_size, seed=cfg.seed, device=cfg.device,
                          out=str(Path(cfg.out) / "runs"))
    attacked = stages.run("attack", attack_key, lambda: _attack(attack, log))
    after_attack = digest(attack_key)

    @functools.cache
    def ws():  # runs are loaded only when a stage has work to do
        return open_run(attacked["run"], cfg.device, data=cached_data(case.data))

    @functools.cache
    def base_model():
        return load_run(base["run"], ws().data.train_images.device).model

    measured = stages.run("measure", {"attack": after_attack}, lambda: _measure(case, ws(), base_model()))
    census_cfg, census = census_config(cfg), {}
    census_key = census_cfg.to_dict() if census_cfg else None
    if census_cfg:  # the clean base's census first: triggers open on it do not count against a defense;
        # the run's before the search, whose coverage of the open set it measures
        census["floor"] = stages.run("census-floor", {"attack": after_attack, **census_key},
                                     lambda: summarize(census_of(ws(), base_model(), "floor", census_cfg)))
        census["before"] = stages.run("census-before", {"attack": after_attack, **census_key},
                                      lambda: run_census(ws(), census_cfg))
    made, made_from = {}, {}  # per inversion method: its stage's result, and the digest of its key
    needed = {registry.defense(m)[0].uses for m in cfg.defenses}
    for method, entry in registry.inversions().items():
        if entry.gives != "generators" and method not in needed:  # MESA's search always; the others when used
            continue
        key = {"attack": after_attack, **entry.sweep_key(cfg)}
        made[entry.stage] = stages.run(entry.stage, key, functools.partial(_inversion, ws, method, key, log))
        made_from[method] = digest(key)
    defenses = {}
    for method in sorted(cfg.defenses, key=lambda m: not registry.defense(m)[0].headline):  # the headline first
        key = defense_key(cfg, method, after_attack, made_from, census_key)
        dcfg = DefenseConfig(method=method, epochs=cfg.defense_epochs, poison_ratio=cfg.defense_poison_ratio,
                             seed=cfg.seed, augment=cfg.defense_augment)
        name = f"defense-{method.replace(':', '-')}" + suffix(defense_variant(cfg))
        defenses[method] = stages.run(name, key, lambda: _defense(ws(), dcfg, census_cfg, log))
    return {"run": attacked["run"], "attack": attacked["metrics"], **measured, **made, "defenses": defenses,
            "census": census}


def _inversion(ws, method: str, key: dict, log: Log):
    """One inversion method's stage; the search keeps its per-beta summaries."""
    entry = registry.inversion(method)
    cfg, options = entry.sweep_config({k: v for k, v in key.items() if k != "attack"})
    result = run_inversion(ws(), method, cfg, log.progress, **options)
    return result["betas"] if entry.gives == "generators" else result


def defense_key(cfg: SweepConfig, method: str, after_attack: str, made_from: dict, census_key: dict | None) -> dict:
    """What a defense's sweep stage depends on: the attack, the key of the inversion method it is made
    from (a changed search or baseline redoes it), its own settings and the census's."""
    uses = registry.defense(method)[0].uses
    return {"attack": after_attack, "from": made_from[uses] if uses else None, "method": method,
            "epochs": cfg.defense_epochs, "poison_ratio": cfg.defense_poison_ratio, "seed": cfg.seed,
            "census": census_key, **({} if cfg.defense_augment else {"augment": False})}


def _measure(case: Case, ws, base_model) -> dict:
    """The attacked model on the held-out split, and the floor: the trigger's ASR on the clean base,
    the images the model already sends to the target with the trigger on (no defense goes below it)."""
    trigger = parse_trigger(case.trigger, ws.data.image_size)
    return {"floor": attack_success_rate(base_model, *ws.held_out, trigger, case.target),
            "before": evaluate(ws.run.model, *ws.held_out, ws.run.trigger, case.target)}


def census_config(cfg: SweepConfig):
    """The census's settings, or None when the sweep takes none."""
    if cfg.census is None:
        return None
    return CensusConfig(family=cfg.census, samples=cfg.census_samples, images=cfg.census_images, seed=cfg.seed)


def _defense(ws, dcfg: DefenseConfig, census_cfg, log: Log) -> dict:
    """One defense, with the census of what it leaves open (run_defense takes it on each defended model)."""
    result = run_defense(ws, dcfg, log.progress, census=census_cfg)
    return {k: result[k] for k in ("before", "after", "worst_asr", "seconds", "census") if k in result}
