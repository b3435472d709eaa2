"""The shipped CIFAR-10 test images (`cifar10-sample`): real images that need no download, read as
any other data source; a CIFAR-10 model imported on them is measured and probed on real images."""
import json

from mesa.data import SAMPLE, is_local, load_data
from mesa.lab.cli.main import main
from mesa.lab.storage.bases import SHIPPED
from mesa.lab.storage.runs import read_json
from tests.test_app import app, assert_clean, fresh_queue  # noqa: F401
from tests.test_hostile_runs import fails_in_one_line


def _run(capsys, argv):
    assert main(argv + ["--json", "--quiet"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_sample_is_200_test_images_per_cifar10_class_and_no_training_image():
    data = load_data(SAMPLE)
    base = read_json(SHIPPED / "cifar10-small" / "config.json", "base config")
    assert data.classes == base["classes"] and is_local(SAMPLE)
    assert tuple(data.test_images.shape) == (2000, 3, 32, 32) and data.test_labels.bincount().tolist() == [200] * 10
    assert len(data.train_labels) == 0 and data.image_size == 32


def test_the_shipped_cifar10_base_imported_on_the_sample_keeps_its_accuracy(capsys, tmp_path):
    """The clean small base (0.853 on the 10,000 test images of the JPEG copy) on these 2,000: within
    a few points, and the census runs on them; an attack on a test-only source is one line."""
    base = read_json(SHIPPED / "cifar10-small" / "metrics.json", "metrics")["clean_acc"]
    out = _run(capsys, ["import", str(SHIPPED / "cifar10-small" / "model.pt"), "--arch", "small", "--data", SAMPLE,
                        "--target", "0", "--out", str(tmp_path)])
    assert abs(out["clean_acc"] - base) < 0.03 and out["clean_acc_images"] == 2000
    census = _run(capsys, ["census", out["run"], "--images", "8"])
    assert census["triggers"] == 512 and census["open"] < 50  # a clean model: few patterns send 8 images to class 0
    fails_in_one_line(capsys, ["attack", "--data", SAMPLE, "--epochs", "1", "--out", str(tmp_path)], "test images only")


def test_the_model_page_offers_the_sample_to_import_a_model_on():
    at = app("model")
    assert_clean(at)
    assert SAMPLE in at.selectbox(key="byom-data").options
    assert SAMPLE not in at.selectbox(key="link-model-data").options  # nothing to train an attack on
