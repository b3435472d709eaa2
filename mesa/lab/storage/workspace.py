"""A saved run opened for MESA's stages: its model and data on the device, and the paper's split of
the test set (80% the defender's, 20% held out)."""
from dataclasses import dataclass

from mesa.lab.storage import artifacts
from mesa.data import ImageData, defense_split, load_data
from mesa.device import resolve_device
from mesa.errors import MesaError
from mesa.lab.storage.runs import Run, load_run


@dataclass
class Workspace:
    """A loaded run with its data on the device and the defense split."""
    run: Run
    data: ImageData
    modeling: tuple  # (images, labels): the defender's 80%
    held_out: tuple  # (images, labels): the 20% for evaluation


def open_run(run_path, device="auto", data: ImageData | None = None, target: int | None = None) -> Workspace:
    """`target`: the class to work toward when the run does not know its backdoor's (an imported model)."""
    device = resolve_device(device)
    run = load_run(run_path, device)
    if run.target is None:  # in memory only: the given class, else the suspect of a saved detection
        found = artifacts.load_detection(run.path) if target is None else None
        run.config["target"] = found["suspect"] if found else target
        if run.target is not None and not 0 <= run.target < run.config["num_classes"]:
            raise MesaError(f"target class {run.target} out of range 0..{run.config['num_classes'] - 1}")
    data = (data or load_data(run.config["data"])).to(device)
    mx, my, hx, hy = defense_split(data.test_images, data.test_labels)
    return Workspace(run, data, (mx, my), (hx, hy))


def trigger_size(ws: Workspace, default: int) -> int:
    """Model triggers of the attacker's size when the run knows its trigger."""
    return ws.run.trigger.shape[-1] if ws.run.trigger is not None else default


def need_target(ws: Workspace) -> int:
    if ws.run.target is None:
        raise MesaError(f"run {ws.run.path} does not know its backdoor's class (an imported model): "
                        "run `detect` first, or pass --target")
    return ws.run.target


def stamp_location(ws: Workspace, spec: str | None) -> str:
    """Where a stage stamps triggers: as asked, else where the run's attack did (random by default)."""
    return spec if spec is not None else ws.run.config.get("location") or "random"
