"""The census as one background job: the run's own model ("before"), then every defended model the
run kept whose census is missing (pixel-sgd keeps none: its census is taken during its defense)."""
from .artifacts import method_file
from .census import CensusConfig
from .jobs import Work, open_cached
from .probe import kept_defenses
from .progress import Progress
from .stages import run_census, saved_census


def census_work(run_path, cfg: CensusConfig = CensusConfig()) -> Work:
    def work(on_progress, should_stop):
        ws = open_cached(run_path)
        methods = [None] + [m for m in kept_defenses(run_path) if saved_census(ws, method_file(m), cfg) is None]
        out = {"run": str(run_path), "censuses": []}
        for i, method in enumerate(methods):
            if should_stop():
                break
            on_progress(Progress(f"census {method or 'before'}", i, len(methods)))
            out["censuses"].append(run_census(ws, cfg, method))
        on_progress(Progress("census", len(methods), len(methods)))
        return out
    return work
