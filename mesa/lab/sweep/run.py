"""Run a sweep: the clean bases first, then the cases, on an executor; the table is rewritten
after every finished case.

Executors: `local` runs cases one after another in this process, or `parallel` at once in a
process pool (sensible on a GPU, which several small cases can share; on a CPU they only split its
cores). `ray` makes each case a Ray task: a local cluster by default, or an existing one at
`address`, each task holding `gpus_per_case` of a GPU. Every task writes into the sweep's folder,
which must therefore be on a file system every node sees.
"""
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from mesa.errors import MesaError
from mesa.lab.jobs.worker import die_with_parent
from mesa.lab.sweep.case import run_base, run_case
from mesa.lab.sweep.plan import SweepConfig, plan_cases
from mesa.lab.sweep.table import table_name, write_tables

EXECUTORS = ("local", "ray")


@dataclass
class ExecutorConfig:
    executor: str = "local"
    parallel: int = 1  # local: cases at once (a process pool when > 1)
    address: str | None = None  # ray: an existing cluster ("auto" or host:port); None starts a local one
    num_cpus: int | None = None  # ray: CPUs of the local cluster (default: all)
    cpus_per_case: float = 1.0
    gpus_per_case: float = 0.0  # ray: e.g. 0.25 runs four cases on each GPU

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise MesaError(f"unknown executor {self.executor!r}: use {' or '.join(EXECUTORS)}")
        if self.parallel < 1 or self.cpus_per_case <= 0 or self.gpus_per_case < 0:
            raise MesaError("--parallel and --cpus-per-case must be positive, --gpus-per-case >= 0")


def _local(fn, jobs, ex: ExecutorConfig):
    if ex.parallel == 1:
        for job in jobs:
            yield job, _outcome(lambda: fn(*job))
        return
    # spawn, not fork: a forked CUDA context is unusable. The workers die with this process, which
    # holds the machine's turn: a killed sweep leaves nothing training once the machine is free
    with ProcessPoolExecutor(ex.parallel, mp_context=get_context("spawn"), initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(fn, *job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], _outcome(future.result)


def _ray(fn, jobs, ex: ExecutorConfig):
    try:
        import ray
    except ImportError:
        raise MesaError("--executor ray needs Ray: pip install -r requirements.txt (or pip install ray)") from None
    if not ray.is_initialized():
        import mesa
        # py_modules ships this copy of mesa to every worker, so a cluster needs no install of its own
        ray.init(address=ex.address, num_cpus=None if ex.address else ex.num_cpus, include_dashboard=False,
                 runtime_env={"py_modules": [str(Path(mesa.__file__).parent)]}, log_to_driver=False)
    task = ray.remote(num_cpus=ex.cpus_per_case, num_gpus=ex.gpus_per_case, max_retries=0)(fn)
    pending = {task.remote(*job): job for job in jobs}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        yield pending.pop(done[0]), _outcome(lambda: ray.get(done[0]))


def _outcome(get):
    """A task's result, or its crash (a killed worker, say) as an error result."""
    try:
        return get()
    except Exception as e:  # noqa: BLE001 - recorded in the table, the sweep goes on
        return {"error": f"{type(e).__name__}: {e}", "ran": [], "seconds": {}}


def execute(fn, jobs: list[tuple], ex: ExecutorConfig):
    """Yield (job, result) as each job finishes."""
    return (_ray if ex.executor == "ray" else _local)(fn, jobs, ex)


def run_sweep(cfg: SweepConfig, ex: ExecutorConfig | None = None, progress: bool = True) -> dict:
    """Every case of the sweep; returns counts, the stages run, and where the table is."""
    from tqdm import tqdm

    ex = ex or ExecutorConfig()
    cases = plan_cases(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    pairs = list(dict.fromkeys((c.data, c.model) for c in cases))
    bases, ran = {}, []
    # a base that fails comes back as {"error": ...} (from _outcome), and its cases fail with it
    for (_, data, model), base in execute(run_base, [(cfg, d, m) for d, m in pairs], ex):
        bases[data, model] = base
        ran += [f"base {data}/{model}: {name}" for name in base.get("ran", [])]
    results = {}
    jobs = [(cfg, c, bases[c.data, c.model]) for c in cases if "error" not in bases[c.data, c.model]]
    for c in cases:
        if "error" in bases[c.data, c.model]:
            results[c.key] = {"case": c.key, "trigger": c.trigger, "target": c.target,
                              "error": f"clean base failed: {bases[c.data, c.model]['error']}", "ran": []}
    bar = tqdm(total=len(cases), desc="sweep", unit="case", file=sys.stderr, disable=not progress, initial=len(results))
    for (_, case, _), result in execute(run_case, jobs, ex):
        results[case.key] = {"case": case.key, "data": case.data, "model": case.model, "trigger": case.trigger,
                             "target": case.target, **result}
        ran += [f"{case.key}: {name}" for name in result.get("ran", [])]
        bar.update(1)
        bar.set_postfix_str(f"{case.label}" + (" FAILED" if "error" in result else ""))
        write_tables(cfg.out, cfg, {c.key: results[c.key] for c in cases if c.key in results})
    bar.close()
    failed = {k: r["error"] for k, r in results.items() if "error" in r}
    if not jobs:
        write_tables(cfg.out, cfg, results)
    return {"out": str(cfg.out), "cases": len(cases), "done": len(cases) - len(failed), "failed": failed,
            "stages_run": ran, "table": str(Path(cfg.out) / f"{table_name(cfg)}.md")}


def default_out() -> str:
    from mesa.lab.storage.runs import runs_root

    return str(runs_root() / "sweep")
