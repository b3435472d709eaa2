"""`pip install .` gives an engine that works away from the source tree (issue 25): the wheel and the
source distribution carry the resources the engine reads (mesa/resources.py), and the wheel, installed
into a fresh virtual environment and run from a folder outside the clone, finds them in the package.
Built from a copy of the clone's files (tracked, or new and not ignored), so nothing is written here."""
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mesa.resources import PACKAGED, RESOURCES, shipped_files

ROOT = Path(__file__).resolve().parent.parent


def _run(argv, cwd, env=None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, argv))}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the clone, and the wheel and source distribution built from it."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git clone, to know which files a clone has")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    tmp = tmp_path_factory.mktemp("packaging")
    clone, dist = tmp / "clone", tmp / "dist"
    for name in filter(None, listed):
        if (ROOT / name).is_file():  # a file deleted but not yet committed is listed too
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", dist], clone)
    _run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"], clone)
    return clone, next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))


def test_the_wheel_and_the_sdist_carry_every_resource(built):
    clone, wheel, sdist = built
    files = shipped_files(clone)
    assert {p.parts[1] for p in files.values()} == set(RESOURCES)
    assert any(p.name == "cpu-classroom-demo.json" for p in files) and any(p.name == "model.pt" for p in files)
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert {f"mesa/{p.as_posix()}" for p in files.values()} == {n for n in in_wheel if n.startswith(f"mesa/{PACKAGED}/")}
    assert {"mesa/lab/cli/main.py", "mesa/lab/storage/runs.py", "mesa/method/search.py"} <= in_wheel  # every subpackage
    top = sdist.name.removesuffix(".tar.gz")
    in_sdist = set(tarfile.open(sdist).getnames())
    assert {f"{top}/{p.relative_to(clone).as_posix()}" for p in files} <= in_sdist


CHECK = """
from mesa.lab.pipeline import presets
from mesa.lab.storage import bases, ready_runs, recorded
import mesa
inside = lambda p: p.resolve().is_relative_to(mesa.__path__[0])
assert presets.builtin()["CPU classroom demo"] and inside(presets.PRESETS_DIR)
assert ready_runs.shipped_runs() and inside(ready_runs.SHIPPED)
assert bases.has_shipped_base("fastnet") and inside(bases.SHIPPED)
assert recorded.list_records()[0] and inside(recorded.RESULTS_DIR)
from mesa.data import load_data
from mesa.resources import resource
assert len(load_data("cifar10-sample").test_labels) == 2000 and inside(resource("cifar10-sample"))
print(mesa.__path__[0])
"""


def test_installed_in_a_fresh_venv_it_finds_its_resources_outside_the_clone(built, tmp_path):
    """--system-site-packages: torch and the rest come from this interpreter, the engine from the wheel."""
    _, wheel, _ = built
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv], tmp_path)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert "--preset" in _run([venv / "bin" / "mesa", "demo", "--help"], outside, env)
    package = Path(_run([python, "-c", CHECK], outside, env).strip())
    assert package.is_relative_to(venv) and not package.is_relative_to(ROOT)
