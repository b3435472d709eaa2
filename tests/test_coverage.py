"""Coverage of MESA's samples (mesa/method/coverage.py): binarised patterns numbered as binary_trigger
numbers them, distinct patterns and modes on hand-made samples, the share of a hand-made census's open
set they hit, and the keys `search --json` reports."""
import json
import math

import pytest
import torch

from mesa.lab.storage import artifacts
from mesa.lab.cli.main import main
from mesa.lab.pipeline.search_coverage import COVERAGE_KEYS, saved_coverage, search_coverage
from mesa.method.census import Census
from mesa.method.coverage import BINARISED, NEAREST, coverage_of, effective_modes, member_names, pattern_numbers
from mesa.method.triggers import binary_trigger, color_trigger
from tests.conftest import fresh_copy


def copies(*counts: tuple[int, int], k: int = 3) -> torch.Tensor:
    """`n` copies of binary pattern `p` for each (p, n), greys pushed off 0/1 as a generator's would be."""
    return torch.cat([binary_trigger(p, k).mul(0.8).add(0.1).expand(n, 3, k, k) for p, n in counts])


def binary_census(asr: dict[int, float], k: int = 3) -> Census:
    """A census of every k x k pattern with the given ASRs (others 0), target class 0 of 2."""
    names = [f"binary:{n}" for n in range(2 ** (k * k))]
    rates = torch.zeros(len(names), 2)
    for n, a in asr.items():
        rates[n, 0] = a
    return Census("binary", names, torch.stack([binary_trigger(n, k) for n in range(len(names))]), rates, 0)


@pytest.mark.parametrize("number", [0, 1, 7, 170, 256, 325, 341, 511])
def test_binarised_patterns_are_numbered_as_binary_trigger_numbers_them(number):
    assert pattern_numbers(binary_trigger(number)[None]).item() == number
    assert pattern_numbers(copies((number, 2))).tolist() == [number, number]


def test_every_pattern_round_trips_and_grey_is_the_channel_mean():
    assert pattern_numbers(torch.stack([binary_trigger(n) for n in range(512)])).tolist() == list(range(512))
    assert pattern_numbers(torch.stack([binary_trigger(n, 2) for n in range(16)])).tolist() == list(range(16))
    one_channel = torch.zeros(1, 3, 3, 3)
    one_channel[0, 0, 0, 0] = 1.0  # grey 1/3: dark
    one_channel[0, :2, 0, 1] = 1.0  # grey 2/3: bright
    assert pattern_numbers(one_channel).item() == 0b010000000
    assert pattern_numbers(torch.full((1, 3, 3, 3), 0.5)).item() == 0  # exactly 0.5 is not > 0.5


def test_distinct_and_modes_of_hand_made_samples():
    two = coverage_of(copies((170, 128), (325, 128)))
    assert (two.distinct, two.basis) == (2, BINARISED) and two.modes == pytest.approx(2.0)
    assert coverage_of(copies((7, 256))).modes == pytest.approx(1.0)
    skewed = coverage_of(copies((1, 192), (2, 64)))
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert skewed.distinct == 2 and skewed.modes == pytest.approx(math.exp(entropy))
    assert effective_modes([f"binary:{n}" for n in range(5)]) == pytest.approx(5.0)
    assert "coverage" not in two.to_dict() and two.hit is None  # no census, no coverage


def test_coverage_of_a_hand_made_open_set():
    census = binary_census({170: 0.9, 325: 0.6, 341: 0.5, 1: 0.49, 2: 1.0})  # open: 170, 325, 341, 2
    cov = coverage_of(copies((170, 100), (325, 50), (1, 50), (0, 56)), census)
    assert (cov.hit, cov.open, cov.distinct) == (2, 4, 4)
    assert cov.coverage == pytest.approx(0.5) and cov.open_share == pytest.approx(150 / 256)
    assert cov.to_dict()["coverage"] == pytest.approx(0.5)
    shut = coverage_of(copies((170, 4)), binary_census({}))
    assert (shut.hit, shut.open, shut.coverage, shut.open_share) == (0, 0, None, 0.0)
    assert coverage_of(copies((3, 4), k=2), census).open is None  # another trigger size: no coverage


def test_colour_samples_fall_on_their_nearest_colour_census_member():
    members = torch.stack([color_trigger(s) for s in range(10)])
    census = Census("color", [f"color:{s}" for s in range(10)], members, torch.zeros(10, 2), 0)
    census.rates[[3, 4], 0] = 0.8
    samples = torch.cat([members[3:4] + 0.01, members[3:4] - 0.01, members[7:8] + 0.02])
    names, basis = member_names(samples, census)
    assert names == ["color:3", "color:3", "color:7"] and basis == NEAREST
    cov = coverage_of(samples, census)
    assert (cov.distinct, cov.hit, cov.open) == (2, 1, 2) and cov.open_share == pytest.approx(2 / 3)


def search_json(run: str, capsys) -> dict:
    assert main(["search", run, "--epochs", "1", "--betas", "0.9", "--samples", "32", "--json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_search_json_reports_coverage_and_saves_it(backdoored_synthetic, tmp_path, capsys):
    run = fresh_copy(backdoored_synthetic["run"], tmp_path)
    (beta,) = search_json(run, capsys)["betas"]
    assert {"distinct", "modes", "basis"} <= set(beta) and "coverage" not in beta  # no census yet
    assert 1 <= beta["distinct"] <= 32 and 1 <= beta["modes"] <= beta["distinct"] + 1e-9
    artifacts.save_census(run, "before", binary_census({170: 0.9}), {}, {})  # a census taken after the search
    found = artifacts.load_search(run)
    later = saved_coverage(run, "binary:170", found)[0.9]
    assert later["open"] == 1 and later["coverage"] in (0.0, 1.0)
    (beta,) = search_json(run, capsys)["betas"]  # searched again with the census saved
    assert beta["open"] == 1 and 0 <= beta["open_share"] <= 1
    samples = artifacts.load_search(run)["betas"][0.9]["samples"]  # the set still matches its hashes
    assert search_coverage(run, "binary:170", {0.9: samples})[0.9] == {k: beta[k] for k in COVERAGE_KEYS}
    saved = artifacts.read_search_meta(run)["betas"][0]
    assert {k: saved[k] for k in COVERAGE_KEYS} == {k: beta[k] for k in COVERAGE_KEYS}


def test_the_mesa_and_census_pages_show_the_shipped_runs_coverage(monkeypatch, tmp_path):
    """The ready run's search was saved before coverage was measured: the pages measure it from its samples."""
    pytest.importorskip("streamlit.testing.v1")
    from tests.test_app import ROOT, app, assert_clean

    runs = tmp_path / "shipped"
    fresh_copy(str(ROOT / "assets/runs/ready-synthetic-small-binary170-t0"), runs)
    monkeypatch.setenv("MESA_RUNS", str(runs))
    at = app("mesa_search")
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "distinct patterns" in d.value)
    assert list(table["beta"]) == [0.5, 0.8, 0.9] and list(table["open set hit"]) == ["6 of 90", "4 of 90", "7 of 90"]
    assert any("Low coverage" in m.value for m in at.markdown)
    at = app("census")
    assert_clean(at)
    assert any("Boxed in green" in c.value for c in at.caption)
