"""Hostile files by their size (issue 24), each made here: a 1 MB .pt that inflates to 1 GiB and a PNG
that declares 20000 x 20000 pixels. Each is refused from its header or its zip entries, before it is
read: one line (the CLI: exit 2; the app's upload: a MesaError), nothing written."""
import collections
import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from mesa.errors import MesaError
from mesa.lab.imports.model_import import ImportConfig, import_upload
from mesa.method.triggers import parse_trigger
from tests.test_hostile_files import DATA, ROOT, _fails_in_one_line, _png

def _inflating_pt(path: Path, nbytes: int) -> Path:
    """A torch.save file of one uint8 tensor of nbytes zeros, stored deflated: ~1/1000 of its size."""
    storage = object()

    class Tensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (storage, 0, (nbytes,), (1,), False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.ByteStorage, "0", "cpu", nbytes) if obj is storage else None

    pkl = io.BytesIO()
    Pickler(pkl, protocol=2).dump({"weight": Tensor()})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("bomb/data.pkl", pkl.getvalue())
        z.writestr("bomb/byteorder", "little")
        entry = zipfile.ZipInfo("bomb/data/0")
        entry.compress_type = zipfile.ZIP_DEFLATED
        with z.open(entry, "w", force_zip64=True) as f:
            zeros = bytes(64 << 20)
            for _ in range(nbytes // len(zeros)):
                f.write(zeros)
        z.writestr("bomb/version", "3\n")
    return path


PEAK = """import resource, sys
import mesa.lab.imports.model_import
from mesa.lab.cli.main import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
print(code, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10)
"""


def test_a_small_file_that_inflates_is_refused_before_it_is_read(tmp_path):
    bomb = _inflating_pt(tmp_path / "weights.pt", 1 << 30)
    assert bomb.stat().st_size < 2 << 20
    runs = tmp_path / "runs"
    out = subprocess.run([sys.executable, "-c", PEAK, "import", str(bomb), "--data", DATA, "--arch", "small",
                          "--out", str(runs)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    code, grown_mib = (int(v) for v in out.stdout.split()[-2:])
    assert code == 2 and grown_mib < 150, (out.stdout, out.stderr)  # reading it would take 1024 MiB
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and "unpacks to 1024 MiB" in err, err
    assert not runs.exists()
    with pytest.raises(MesaError, match="unpacks to"):  # the same file uploaded (1 MB: under the upload limit)
        import_upload(bomb.read_bytes(), "weights.pt", ImportConfig(file="", data=DATA, arch="small"))


def test_a_huge_png_trigger_is_refused_from_its_header(tmp_path, capsys):
    big = tmp_path / "big.png"
    big.write_bytes(_png(20000, 20000))
    for size in (32, None):
        with pytest.raises(MesaError, match="huge image"):
            parse_trigger(f"file:{big}", size)
    tall = tmp_path / "tall.png"
    tall.write_bytes(_png(3, 4000))
    with pytest.raises(MesaError, match="is 3x4000: at most 8x8"):
        parse_trigger(f"file:{tall}", 32)
    _fails_in_one_line(capsys, ["attack", "--data", DATA, "--epochs", "1", "--trigger", f"file:{big}"],
                       "huge image", tmp_path / "runs")


def test_a_huge_poisoned_png_in_a_backdoorbench_record_is_skipped_unread(tmp_path):
    from mesa.lab.imports.backdoorbench import poisoned_images

    png = tmp_path / "bd_test_dataset" / "3" / "7.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(_png(20000, 20000))
    entry = {"path": "./record/x/bd_test_dataset/3/7.png", "other_info": [0, 3]}
    record = {"bd_test": {"bd_data_container": {"data_dict": {7: entry}}}}
    assert poisoned_images(record, tmp_path / "attack_result.pt", 32) == (None, {"poisoned_in_file": 1,
                                                                             "poisoned_read": 0})
