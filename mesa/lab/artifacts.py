"""MESA's results inside a run folder, each file written atomically and loaded with weights_only=True.

    mesa/search.json          config, target, per-beta summary and loss curves
    mesa/generator-B.pt       G_beta weights         mesa/samples-B.pt  samples, their ASR, snapshots
    mesa/baseline.json/.pt    pixel-SGD triggers, their ASR and curve
    mesa/defense-METHOD.json  before/after metrics and per-epoch history (+ .pt: defended weights)
    mesa/detection.json       per-class achievable ASR
    mesa/census-TAG-FAMILY.json/.pt  a census (TAG: before, floor, defense-METHOD[-RESTART]): summary,
                              settings; every trigger's spec, per-class rates and ASR
"""
from pathlib import Path


from mesa import atomic
from mesa.method.census import Census
from mesa.errors import MesaError
from mesa.method.generator import TriggerGenerator
from mesa.lab.runs import load_tensor_file, read_json

FOLDER = "mesa"


def _dir(run_path) -> Path:
    return Path(run_path) / FOLDER


def _beta_tag(beta: float) -> str:
    return f"{beta:g}"


def save_search(run_path, results, cfg, target: int, hidden: int) -> None:
    d = _dir(run_path)
    for r in results:
        tag = _beta_tag(r.beta)
        atomic.write_torch(d / f"generator-{tag}.pt", r.generator.state_dict())
        atomic.write_torch(d / f"samples-{tag}.pt", {"triggers": r.samples, "asr": r.samples_asr,
                                                     "snapshots": r.snapshots})
    atomic.write_json(d / "search.json", {"config": cfg.to_dict(), "target": target, "hidden": hidden,
                                          "betas": [{**r.summary(), "curve": r.curve} for r in results]})


def read_search_meta(run_path) -> dict | None:
    """search.json alone (config, target, per-beta summaries), without loading any generator."""
    f = _dir(run_path) / "search.json"
    return read_json(f, "search results") if f.is_file() else None


def load_search(run_path, device="cpu") -> dict | None:
    """{"config", "target", "betas": {beta: {summary, curve, generator, samples, asr, snapshots}}} or None."""
    d = _dir(run_path)
    if not (d / "search.json").is_file():
        return None
    meta = read_json(d / "search.json", "search results")
    cfg = meta["config"]
    betas = {}
    for entry in meta["betas"]:
        tag = _beta_tag(entry["beta"])
        gen = TriggerGenerator(cfg["trigger_size"], cfg["noise_dim"], meta["hidden"])
        try:
            gen.load_state_dict(load_tensor_file(d / f"generator-{tag}.pt", "generator"))
        except RuntimeError:
            raise MesaError(f"generator {d / f'generator-{tag}.pt'} does not fit its search.json") from None
        samples = load_tensor_file(d / f"samples-{tag}.pt", "trigger samples")
        betas[entry["beta"]] = {**entry, "generator": gen.to(device).eval(), "samples": samples["triggers"],
                                "asr": samples["asr"], "snapshots": samples["snapshots"]}
    return {"config": cfg, "target": meta["target"], "betas": betas}


def save_baseline(run_path, triggers, asr, cfg, curve) -> None:
    d = _dir(run_path)
    atomic.write_torch(d / "baseline.pt", {"triggers": triggers, "asr": asr})
    atomic.write_json(d / "baseline.json", {"config": cfg.to_dict(), "curve": curve,
                                            "mean_asr": asr.mean().item(), "min_asr": asr.min().item()})


def load_baseline(run_path) -> dict | None:
    d = _dir(run_path)
    if not (d / "baseline.pt").is_file():
        return None
    meta = read_json(d / "baseline.json", "baseline results")
    return {**meta, **load_tensor_file(d / "baseline.pt", "baseline triggers")}


def method_file(method: str) -> str:
    return "defense-" + method.replace(":", "-")


def save_defense(run_path, result: dict, defended=None) -> None:
    d = _dir(run_path)
    if defended is not None:
        atomic.write_torch(d / f"{method_file(result['method'])}.pt",
                           {k: v.detach().cpu() for k, v in defended.state_dict().items()})
    atomic.write_json(d / f"{method_file(result['method'])}.json", result)


def load_defenses(run_path) -> dict:
    """{method: result} for every defense saved in the run."""
    d = _dir(run_path)
    results = {}
    for f in sorted(d.glob("defense-*.json")) if d.is_dir() else []:
        r = read_json(f, "defense result")
        results[r["method"]] = r
    return results


def save_detection(run_path, result: dict) -> None:
    atomic.write_json(_dir(run_path) / "detection.json", result)


def load_detection(run_path) -> dict | None:
    f = _dir(run_path) / "detection.json"
    return read_json(f, "detection result") if f.is_file() else None


def _census_file(tag: str, family: str) -> str:
    return f"census-{tag.replace(':', '-')}-{family}"


def save_census(run_path, tag: str, census, summary: dict, settings: dict) -> None:
    d = _dir(run_path)
    name = _census_file(tag, census.family)
    atomic.write_torch(d / f"{name}.pt", {"names": census.names, "triggers": census.triggers,
                                          "rates": census.rates, "target": census.target,
                                          "planted_asr": census.planted_asr})
    atomic.write_json(d / f"{name}.json", {"tag": tag, "settings": settings, "summary": summary})


def load_census(run_path, tag: str = "before", family: str = "binary") -> dict | None:
    """{"tag", "settings", "summary", "census": Census} or None when that census was never taken."""
    d = _dir(run_path)
    name = _census_file(tag, family)
    if not (d / f"{name}.json").is_file():
        return None
    meta = read_json(d / f"{name}.json", "census summary")
    data = load_tensor_file(d / f"{name}.pt", "census")
    try:
        census = Census(family, list(data["names"]), data["triggers"], data["rates"], data["target"], data["planted_asr"])
    except (KeyError, TypeError):
        raise MesaError(f"census {d / name}.pt is not a MESA Lab census") from None
    return {**meta, "census": census}


def list_censuses(run_path, family: str = "binary") -> list[str]:
    """The tags of every census saved in the run for a family."""
    d = _dir(run_path)
    suffix = f"-{family}.json"
    return sorted(f.name[len("census-"):-len(suffix)] for f in d.glob(f"census-*{suffix}")) if d.is_dir() else []
