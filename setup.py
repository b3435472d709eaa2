"""`pip install .`: pyproject.toml says everything but one step, done here. The engine reads
presets, ready runs, clean bases and recorded results that a clone keeps in assets/ and
docs/results (mesa/resources.py); the build copies them into the package, so an installed
`mesa demo` finds them; a source distribution carries them too, for a build from it."""
import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("mesa_resources", ROOT / "mesa" / "resources.py")
resources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resources)


class BuildWithResources(build_py):
    """build_py, then the resources into build/lib/mesa/_shipped (emptied first, so a file removed
    from the clone leaves the package too). An editable install reads the clone's folders instead."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        package = Path(self.build_lib) / "mesa"
        shutil.rmtree(package / resources.PACKAGED, ignore_errors=True)
        for source, inside in resources.shipped_files(ROOT).items():
            self.mkpath(str((package / inside).parent))
            self.copy_file(str(source), str(package / inside))


class SdistWithResources(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        for source in resources.shipped_files(ROOT):
            target = Path(base_dir) / source.relative_to(ROOT)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithResources, "sdist": SdistWithResources})
