"""The CIFAR-10 records shipped in docs/results, as the CIFAR-10 page reads them: the rows per case and
method, unreadable files named, and the page itself."""
import json
import shutil

import pytest

from mesa.lab.storage import recorded
from mesa.lab.storage.recorded import BEFORE, FLOOR, list_records, residual_rows
from tests.test_app import app, assert_clean


def test_the_shipped_records_give_one_row_per_case_and_method():
    records, problems = list_records()
    assert not problems
    assert records[0].label == "stamped fraction 0.5" and records[0].cases >= 4
    assert "--poison-ratio 0.01" in next(r.command for r in records if r.stamped == 0.01)
    rows = residual_rows(records[0].path)
    cases = {r["case"] for r in rows}
    assert len(cases) == records[0].cases and "binary:7 -> 0" in cases
    for case in cases:
        mine = {r["method"]: r for r in rows if r["case"] == case}
        assert {BEFORE, FLOOR, "mesa:0.9", "ensemble", "pixel-sgd"} <= set(mine)
        assert mine[BEFORE]["open patterns"] > 100 and mine[FLOOR]["open patterns"] == 0
        assert mine["pixel-sgd"]["worst restart"] >= mine["pixel-sgd"]["planted ASR"]
        assert mine["mesa:0.9"]["worst restart"] is None and 0 <= mine["mesa:0.9"]["closure"] <= 1


def test_unreadable_and_unfinished_records(tmp_path):
    shipped = list_records()[0][0].path
    shutil.copy(shipped, tmp_path / "cifar10-small-results.json")
    (tmp_path / "cifar10-small-broken.json").write_text("{not json")
    (tmp_path / "cifar10-small-empty.json").write_text(json.dumps({"settings": {}, "cases": {}}))
    records, problems = list_records(tmp_path)
    assert [r.path.name for r in records] == ["cifar10-small-results.json"]
    assert len(problems) == 1 and problems[0].startswith("cifar10-small-broken.json: not a readable record")


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(recorded, "RESULTS_DIR", tmp_path)
    return tmp_path


def test_the_page_charts_a_record_and_switches_what_it_shows():
    at = app("cifar10")
    assert_clean(at)
    assert at.selectbox[-1].value == "stamped fraction 0.5"
    assert len(at.get("plotly_chart")) == 1
    at.radio[-1].set_value("open patterns").run()
    assert_clean(at)
    at.selectbox[-1].set_value("stamped fraction 0.01").run()
    assert_clean(at)
    assert "--poison-ratio 0.01" in " ".join(c.value for c in at.caption)


def test_the_page_without_records_says_how_to_make_them(results_dir):
    (results_dir / "cifar10-small-broken.json").write_text("[]")
    at = app("cifar10")
    assert not at.exception
    assert any("bench/defense_cifar10.py" in i.value for i in at.info)
    assert any("cifar10-small-broken.json" in w.value for w in at.warning)


def test_rows_carry_intervals_and_the_contrast_is_tested():
    record = list_records()[0][0]
    rows = residual_rows(record.path)
    for r in rows:
        for rate, ci in (("planted ASR", "planted CI"), ("highest pattern ASR", "highest CI")):
            assert r[ci] is None or r[ci][0] <= r[rate] <= r[ci][1] + 1e-4
        assert r["noise max"] is None or 0 <= r["noise max"] <= 1
    case = json.loads(record.path.read_text())["cases"]
    assert {recorded.planted_images(c) for c in case.values() if c["target"] == 0} == {1791}
    c = recorded.contrast(rows, "pixel-sgd", "mesa:0.9")
    assert c["cases"] == record.cases and c["higher"] + c["lower"] + c["tied"] == c["cases"]
    assert c["p"] == pytest.approx(2 / 2 ** c["cases"]) if c["higher"] == c["cases"] else c["p"] <= 1
    assert set(c["apart"]) <= {r["case"] for r in rows}
