"""Where the engine's shipped files are: presets, ready runs, clean bases and the recorded CIFAR-10
results. A clone keeps them where people look for them and where the tools that remake them write
(assets/, docs/results); an installed package has no source tree beside it, so `pip install .`
copies them into the package as mesa/_shipped/<name>/ (setup.py). Standard library only: setup.py
loads this file before the package is built."""
from pathlib import Path

# name: (its folder in a clone, the files of it the package ships)
RESOURCES = {
    "presets": ("assets/presets", "*.json"),
    "runs": ("assets/runs", "**/*"),
    "bases": ("assets/bases", "**/*"),
    "results": ("docs/results", "cifar10-small-*.json"),
    "cifar10-sample": ("assets/cifar10-test-sample", "**/*"),
}
PACKAGED = "_shipped"  # the copies' folder inside an installed mesa package
_HERE = Path(__file__).resolve().parent


def resource(name: str) -> Path:
    """The folder of a shipped resource: the installed copy in an installed package, the clone's
    folder otherwise."""
    installed = _HERE / PACKAGED / name
    return installed if installed.is_dir() else _HERE.parent / RESOURCES[name][0]


def shipped_files(root: Path) -> dict[Path, Path]:
    """{file in the clone at `root`: its path inside the package} for every resource file the package
    ships. A missing resource folder is an error: a package without it would fail only when used."""
    out = {}
    for name, (folder, pattern) in RESOURCES.items():
        source = Path(root) / folder
        if not source.is_dir():
            raise FileNotFoundError(f"{source}: the package ships this folder (mesa/resources.py), and it is missing")
        for f in sorted(source.glob(pattern)):
            if f.is_file() and "__pycache__" not in f.parts:
                out[f] = Path(PACKAGED) / name / f.relative_to(source)
    return out
