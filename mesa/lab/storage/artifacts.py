"""MESA's results inside a run folder, each file written atomically and loaded with weights_only=True.

    mesa/search.json          config, target, per-beta summary and loss curves
    mesa/generator-B.pt       G_beta weights         mesa/samples-B.pt  samples, their ASR, snapshots
    mesa/baseline.json/.pt    pixel-SGD triggers, their ASR and curve (another inversion method's: STAGE.json/.pt)
    mesa/defense-METHOD.json  before/after metrics and per-epoch history (+ .pt: defended weights; a
                              per-trigger defense's copies: defense-METHOD-I.pt, one per restart)
    mesa/detection.json       per-class achievable ASR
    mesa/census-TAG-FAMILY.json/.pt  a census (TAG: before, floor, defense-METHOD[-RESTART]): summary,
                              settings; every trigger's spec, per-class rates and ASR

A stage's files are one set: its JSON is written last and holds the sha256 of each of its other
files ("files"), so a save cut short between them (a kill) leaves a JSON that does not match, and
the load says so in one line instead of mixing old and new results. The censuses a defense takes
are written before its JSON and name that save ("of"): one whose defense save did not finish is refused.
"""
import uuid
from pathlib import Path
from numbers import Real

import torch

from mesa import atomic
from mesa.method.census import Census
from mesa.errors import MesaError
from mesa.method.generator import TriggerGenerator
from mesa.lab.storage.runs import load_tensor_file, read_json

FOLDER = "mesa"


def _dir(run_path) -> Path:
    return Path(run_path) / FOLDER


def _beta_tag(beta: float) -> str:
    return f"{beta:g}"


def _commit(d: Path, parts: dict, name: str, meta: dict) -> None:
    """Write a set: each of `parts` ({file: tensors}), then the JSON `name` with their hashes."""
    hashes = {}
    for file, obj in parts.items():
        data = atomic.torch_bytes(obj)
        atomic.write_bytes(d / file, data)
        hashes[file] = atomic.sha256(data)
    atomic.write_json(d / name, {**meta, "files": hashes})


def _part(d: Path, meta: dict, file: str, what: str):
    """One file of a set, checked against its JSON's hash (results saved before hashes: unchecked)."""
    hashes = meta.get("files")
    return load_tensor_file(d / file, what, None if hashes is None else str(hashes.get(file)))


def _meta(f: Path, what: str, shape: dict) -> dict:
    """A stage's JSON, refused in one line when a key its load uses is missing or of another type."""
    meta = read_json(f, what)
    for key, kind in shape.items():
        if not isinstance(meta, dict) or not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise MesaError(f"{what} {f} lacks {key!r} or has the wrong type: run that step again")
    return meta


def save_search(run_path, results, cfg, target: int, hidden: int) -> None:
    parts = {}
    for r in results:
        tag = _beta_tag(r.beta)
        parts[f"generator-{tag}.pt"] = r.generator.state_dict()
        parts[f"samples-{tag}.pt"] = {"triggers": r.samples, "asr": r.samples_asr, "snapshots": r.snapshots}
    _commit(_dir(run_path), parts, "search.json", {"config": cfg.to_dict(), "target": target, "hidden": hidden,
                                                   "betas": [{**r.summary(), "curve": r.curve} for r in results]})


def _search_meta(f: Path) -> dict:
    meta = _meta(f, "search results", {"config": dict, "target": int, "hidden": int, "betas": list})
    cfg = meta["config"]
    if not all(isinstance(b, dict) and isinstance(b.get("beta"), Real) for b in meta["betas"]) or \
            not all(isinstance(cfg.get(k), int) for k in ("trigger_size", "noise_dim")):
        raise MesaError(f"search results {f} are not a MESA Lab search.json (betas or config malformed): run search again")
    return meta


def read_search_meta(run_path) -> dict | None:
    """search.json alone (config, target, per-beta summaries), without loading any generator."""
    f = _dir(run_path) / "search.json"
    return _search_meta(f) if f.is_file() else None


def load_search(run_path, device="cpu") -> dict | None:
    """{"config", "target", "betas": {beta: {summary, curve, generator, samples, asr, snapshots}}} or None."""
    d = _dir(run_path)
    if not (d / "search.json").is_file():
        return None
    meta = _search_meta(d / "search.json")
    cfg = meta["config"]
    betas = {}
    for entry in meta["betas"]:
        tag = _beta_tag(entry["beta"])
        gen = TriggerGenerator(cfg["trigger_size"], cfg["noise_dim"], meta["hidden"])
        try:
            gen.load_state_dict(_part(d, meta, f"generator-{tag}.pt", "generator"))
        except (RuntimeError, TypeError, AttributeError):
            raise MesaError(f"generator {d / f'generator-{tag}.pt'} does not fit its search.json") from None
        samples = _part(d, meta, f"samples-{tag}.pt", "trigger samples")
        try:
            betas[entry["beta"]] = {**entry, "generator": gen.to(device).eval(), "samples": samples["triggers"],
                                    "asr": samples["asr"], "snapshots": samples["snapshots"]}
        except (KeyError, TypeError):
            raise MesaError(f"trigger samples {d / f'samples-{tag}.pt'} are not MESA Lab samples") from None
    return {"config": cfg, "target": meta["target"], "betas": betas}


def save_baseline(run_path, triggers, asr, cfg, extra: dict, stage: str = "baseline") -> None:
    """A set of reversed triggers (an inversion method's whose stage is `stage`: STAGE.json and .pt),
    with what its method reports beside them (`extra`: the pixel-SGD curve, a per-class report)."""
    measured = asr[asr.isfinite()]  # a trigger with no image to measure on has no rate
    _commit(_dir(run_path), {f"{stage}.pt": {"triggers": triggers, "asr": asr}}, f"{stage}.json",
            {"config": cfg.to_dict(), **extra, "mean_asr": measured.mean().item(), "min_asr": measured.min().item()})


def load_baseline(run_path, stage: str = "baseline") -> dict | None:
    d = _dir(run_path)
    if not (d / f"{stage}.json").is_file():
        return None
    meta = _meta(d / f"{stage}.json", f"{stage} results", {"config": dict})
    found = _part(d, meta, f"{stage}.pt", f"{stage} triggers")
    if not isinstance(found, dict) or not {"triggers", "asr"} <= set(found):
        raise MesaError(f"{stage} triggers {d / f'{stage}.pt'} are not MESA Lab triggers")
    return {**_public(meta), **found}


def _public(meta: dict) -> dict:
    """A stage's JSON without the bookkeeping of its set."""
    return {k: v for k, v in meta.items() if k not in ("files", "save_id")}


def method_file(method: str) -> str:
    return "defense-" + method.replace(":", "-")


def _weights(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def save_defense(run_path, result: dict, defended=None, censuses=(), copies=()) -> None:
    """The defense's set: the censuses it took of its models ((tag, census, summary, settings), each
    naming this save), its defended weights (or a per-trigger defense's `copies`), then its JSON."""
    d, name, save_id = _dir(run_path), method_file(result["method"]), uuid.uuid4().hex
    for tag, census, summary, settings in censuses:
        save_census(run_path, tag, census, summary, settings, of={"file": f"{name}.json", "save_id": save_id})
    parts = {} if defended is None else {f"{name}.pt": _weights(defended)}
    parts.update({f"{name}-{i + 1}.pt": _weights(m) for i, m in enumerate(copies)})
    _commit(d, parts, f"{name}.json", {**result, "save_id": save_id})


def _defense_meta(f: Path) -> dict:
    return _meta(f, "defense result", {"method": str})


def load_defenses(run_path) -> dict:
    """{method: result} for every defense saved in the run."""
    d = _dir(run_path)
    results = {}
    for f in sorted(d.glob("defense-*.json")) if d.is_dir() else []:
        r = _defense_meta(f)
        results[r["method"]] = _public(r)
    return results


def kept_models(run_path) -> dict[str, tuple[Path, str]]:
    """{name: (its defense's JSON, weights file)} of every defended model the run keeps: METHOD, or
    METHOD-I for copy I of a per-trigger defense (one per restart). Its name's method_file is the tag
    of its census."""
    d, kept = _dir(run_path), {}
    for f in sorted(d.glob("defense-*.json")) if d.is_dir() else []:
        meta = _defense_meta(f)
        files = meta.get("files") if isinstance(meta.get("files"), dict) else {f"{f.stem}.pt": None}  # older saves
        for file in files:
            mine = file == Path(file).name and file.startswith(f.stem) and file.endswith(".pt")  # never a path out
            if mine and (d / file).is_file():
                kept[meta["method"] + file[len(f.stem):-len(".pt")]] = (f, file)
    return kept


def load_defended_state(run_path, name: str) -> dict | None:
    """The defended weights kept as `name` (kept_models), checked against its JSON; None if none is."""
    found = kept_models(run_path).get(name)
    if found is None:
        return None
    return _part(_dir(run_path), _defense_meta(found[0]), found[1], "defended model")


def save_detection(run_path, result: dict) -> None:
    atomic.write_json(_dir(run_path) / "detection.json", result)


def load_detection(run_path) -> dict | None:
    f = _dir(run_path) / "detection.json"
    return read_json(f, "detection result") if f.is_file() else None


def _census_file(tag: str, family: str) -> str:
    return f"census-{tag.replace(':', '-')}-{family}"


def save_census(run_path, tag: str, census, summary: dict, settings: dict, of: dict | None = None) -> None:
    """`of`: the defense save this census belongs to (see save_defense)."""
    name = _census_file(tag, census.family)
    data = {"names": census.names, "triggers": census.triggers, "rates": census.rates, "target": census.target,
            "planted_asr": census.planted_asr, "counts": census.counts, "fresh_asr": census.fresh_asr,
            "fresh_count": census.fresh_count}
    _commit(_dir(run_path), {f"{name}.pt": data}, f"{name}.json",
            {"tag": tag, "settings": settings, "summary": summary, **({"of": of} if of else {})})


def _save_id(f: Path):
    meta = read_json(f, "defense result", {}) if f.suffix == ".json" else {}
    return meta.get("save_id") if isinstance(meta, dict) else None


def load_census(run_path, tag: str = "before", family: str = "binary") -> dict | None:
    """{"tag", "settings", "summary", "census": Census} or None when that census was never taken."""
    d = _dir(run_path)
    name = _census_file(tag, family)
    if not (d / f"{name}.json").is_file():
        return None
    meta = _meta(d / f"{name}.json", "census summary", {"settings": dict, "summary": dict})
    of = meta.get("of")
    if of is not None and (not isinstance(of, dict) or _save_id(d / Path(str(of.get("file"))).name) != of.get("save_id")):
        raise MesaError(f"census {d / name}.json belongs to a defense whose save did not finish: run that defense again")
    data = _part(d, meta, f"{name}.pt", "census")
    try:
        census = Census(family, list(data["names"]), data["triggers"], data["rates"], data["target"], data["planted_asr"],
                        _saved_counts(data, len(data["names"]), meta["settings"]), data.get("fresh_asr"),
                        data.get("fresh_count", 0))
    except (KeyError, TypeError):
        raise MesaError(f"census {d / name}.pt is not a MESA Lab census") from None
    return {**_public({k: v for k, v in meta.items() if k != "of"}), "census": census}


def _saved_counts(data: dict, triggers: int, settings: dict) -> torch.Tensor:
    """Images per trigger; a census saved before the adaptive one measured every trigger on all of them."""
    counts = data.get("counts")
    return counts if isinstance(counts, torch.Tensor) else torch.full((triggers,), int(settings.get("images") or 0))


def list_censuses(run_path, family: str = "binary") -> list[str]:
    """The tags of every census saved in the run for a family."""
    d = _dir(run_path)
    suffix = f"-{family}.json"
    return sorted(f.name[len("census-"):-len(suffix)] for f in d.glob(f"census-*{suffix}")) if d.is_dir() else []
