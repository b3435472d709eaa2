"""The sweep: tiny synthetic cases locally and on a local Ray cluster; a rerun does no work twice, a
changed setting redoes only what it reaches, a failed case does not stop the others; 100 classes."""
import contextlib
import io
import json
import shutil
from dataclasses import replace

import pytest

from mesa.errors import MesaError
from mesa.lab.storage import artifacts
from mesa.lab.sweep import case as sweep_module
from mesa.lab.cli.main import main
from mesa.lab.pipeline.attack_stage import run_attack
from mesa.method.detection import DetectionConfig, detect
from mesa.lab.pipeline.stages import open_run
from mesa.lab.sweep.plan import SweepConfig, attack_variant, expand_triggers, plan_cases
from mesa.lab.sweep.run import run_sweep

# the smallest settings that run every stage: 500 training images (100 test), 1 epoch everywhere
TINY = ["--data", "synthetic:500", "--base-epochs", "1", "--attack-epochs", "1", "--search-epochs", "1",
        "--betas", "0.5", "0.9", "--samples", "8", "--restarts", "2", "--baseline-steps", "5",
        "--defenses", "ensemble", "pixel-sgd", "finetune", "--defense-epochs", "1",
        "--census", "color", "--census-samples", "16", "--census-images", "16", "--device", "cpu"]
CASES = ["--triggers", "binary:170", "color:1-2", "--targets", "0", "1", "2"]


def sweep(out, *extra) -> dict:
    buffer = io.StringIO()  # module fixtures cannot use capsys
    with contextlib.redirect_stdout(buffer):
        assert main(["sweep", *TINY, *extra, "--out", str(out), "--json", "--quiet"]) == 0
    return json.loads(buffer.getvalue().strip().splitlines()[-1])


def stage_files(out) -> dict:
    return {p: p.stat().st_mtime_ns for p in sorted(out.glob("*/*/*.json"))}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    return out, sweep(out, *CASES)


def test_plan_expands_trigger_sets_and_pairs_targets():
    assert len(expand_triggers(["canonical"])) == 51
    assert expand_triggers(["color:1-3", "binary:7,binary:7"]) == ["color:1", "color:2", "color:3", "binary:7"]
    cases = plan_cases(SweepConfig(out="x", data=["a", "b"], triggers=["color:1-2"], targets=[3, 4]))
    assert [(c.data, c.trigger, c.target) for c in cases] == [("a", "color:1", 3), ("a", "color:2", 4),
                                                              ("b", "color:1", 3), ("b", "color:2", 4)]
    assert main(["sweep", "--triggers", "color:1-3", "--targets", "1", "2"]) == 2  # neither one nor one each
    assert main(["sweep", "--triggers", "color:x"]) == 2


def test_local_sweep_saves_every_stage_and_a_rerun_does_no_work_twice(swept, capsys):
    out, first = swept
    assert first["cases"] == 3 and first["done"] == 3 and not first["failed"] and first["stages_run"] > 0
    results = json.loads((out / "results.json").read_text())
    case = results["cases"]["synthetic_500-small-binary_170-t0"]
    assert set(case["defenses"]) == {"ensemble", "pixel-sgd", "finetune"}
    assert 0 <= case["floor"] <= 1 and case["census"]["before"]["triggers"] == 16
    assert case["defenses"]["ensemble"]["census"]["after"]["family"] == "color"
    summary = results["summary"]["synthetic:500 / small"]
    assert summary["worst"]["pixel-sgd"] == max(c["defenses"]["pixel-sgd"]["worst_asr"] for c in results["cases"].values())
    table = (out / "results.md").read_text()
    assert "**mean**" in table and "**worst**" in table and "paper (CIFAR-10, ResNet-18, 51 triggers) mean" in table
    assert (out / "cases" / "synthetic_500-small-color_1-t1" / "case.log").read_text().count("done in") >= 6
    assert main(["sweep", "--out", str(out), "--table"]) == 0 and "**worst**" in capsys.readouterr().out
    saved = stage_files(out)
    again = sweep(out, *CASES)
    assert again["stages_run"] == 0 and again["done"] == 3
    assert stage_files(out) == saved  # nothing rewritten


def test_variants_are_saved_beside_the_default_and_the_table_keeps_earlier_cases(swept):
    """Another stamped fraction (without augmentation) and another attack recipe are kept beside the
    default's stages and tables, on the same clean base; a sweep of one trigger keeps the others' rows."""
    out, _ = swept
    saved = stage_files(out)
    variant = sweep(out, "--triggers", "binary:170", "--defenses", "ensemble", "--defense-poison-ratio", "0.1",
                    "--no-defense-augment")
    assert variant["stages_run"] == 1 and variant["table"].endswith("results-defense-p0.1-noaug.md")
    assert all(stage_files(out)[p] == t for p, t in saved.items())  # the default's stages untouched
    case_dir = out / "cases" / "synthetic_500-small-binary_170-t0"
    assert json.loads((case_dir / "defense-ensemble-defense-p0.1-noaug.json").read_text())["key"]["augment"] is False
    assert len(json.loads((out / "results.json").read_text())["cases"]) == 3
    assert len(json.loads((out / "results-defense-p0.1-noaug.json").read_text())["cases"]) == 1
    recipe = sweep(out, "--triggers", "binary:170", "--defenses", "finetune", "--attack-recipe", "paper",
                   "--census", "none")
    paper_case = out / "cases" / "synthetic_500-small-binary_170-t0-paper-attack"
    assert recipe["stages_run"] == 4  # attack, measure, search, the defense: the base reused, no baseline (unused)
    assert {p.stem for p in paper_case.glob("*.json")} == {"attack", "measure", "search", "defense-finetune"}
    attack = json.loads((paper_case / "attack.json").read_text())
    assert (attack["key"]["epochs"], attack["key"]["lr"], attack["key"]["poison_ratio"]) == (10, 1e-3, 0.01)
    assert "binary:170 -> 0" in (out / "results-paper-attack.md").read_text()
    one = sweep(out, "--triggers", "color:1", "--targets", "1", "--defenses", "ensemble")  # done: only the table
    cases = json.loads((out / "results.json").read_text())["cases"]
    assert one["stages_run"] == 0 and len(cases) == 3
    assert set(cases["synthetic_500-small-color_1-t1"]["defenses"]) == {"ensemble", "pixel-sgd", "finetune"}


def test_a_failed_case_is_reported_and_the_others_go_on(swept, monkeypatch):
    out, _ = swept

    def attack(cfg, *args, **kwargs):  # one case's attack fails; a target out of range is refused at planning
        if cfg.trigger == "color:9":
            raise MesaError("the attack failed")
        return run_attack(cfg, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "run_attack", attack)
    result = sweep(out, "--triggers", "binary:170", "color:1-2", "color:9", "--targets", "0", "1", "2", "2")
    assert result["done"] == 3 and list(result["failed"]) == ["synthetic_500-small-color_9-t2"]
    assert "the attack failed" in result["failed"]["synthetic_500-small-color_9-t2"]
    assert result["stages_run"] == 0  # the three good cases were done already
    assert "color_9-t2: MesaError" in (out / "results.md").read_text()
    assert "FAILED" in (out / "cases" / "synthetic_500-small-color_9-t2" / "case.log").read_text()


def test_a_failed_base_fails_its_cases_only(tmp_path, capsys):
    assert main(["sweep", "--data", "synthetic:50", "--triggers", "color:1-2", "--out", str(tmp_path), "--json",
                 "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["done"] == 0 and len(result["failed"]) == 2
    assert all(e.startswith("clean base failed: MesaError") for e in result["failed"].values())
    assert "FAILED" in next((tmp_path / "bases").glob("*/base.log")).read_text()


def test_ray_runs_new_cases_on_a_local_cluster_and_skips_done_ones(swept):
    ray = pytest.importorskip("ray")
    out, _ = swept
    try:
        result = sweep(out, "--triggers", "binary:170", "color:1-3", "--targets", "0", "1", "2", "3",
                       "--executor", "ray", "--ray-cpus", "2")
    finally:
        ray.shutdown()
    assert result["done"] == 4 and not result["failed"]
    # only the new case's: attack, measure, search, baseline, the census of the base and before, 3 defenses
    assert result["stages_run"] == 9
    assert "color:3 -> 3" in (out / "results.md").read_text()


def test_a_changed_setting_redoes_only_what_it_reaches(swept):
    out, _ = swept
    cfg = SweepConfig(out=str(out), data=["synthetic:500"], triggers=["binary:170"], targets=[0], base_epochs=1,
                      attack_epochs=1, search_epochs=1, betas=[0.5, 0.9], samples=8, restarts=2, baseline_steps=5,
                      defenses=["ensemble", "pixel-sgd", "finetune"], defense_epochs=1, census="color",
                      census_samples=16, census_images=16, device="cpu")
    assert run_sweep(cfg, progress=False)["stages_run"] == []
    ran = run_sweep(replace(cfg, baseline_steps=6), progress=False)["stages_run"]
    assert sorted(name.split(": ")[1] for name in ran) == ["baseline", "defense-pixel-sgd"]


def test_one_hundred_classes(tmp_path):
    """The 100-class path: attack, search (the generator 2048 wide, as the paper's for CIFAR-100),
    census and detection over 100 classes, and the sweep's table."""
    result = sweep(tmp_path, "--data", "synthetic100:500", "--triggers", "color:5", "--targets", "42",
                   "--defenses", "ensemble")
    assert result["done"] == 1, result["failed"]
    case = json.loads((tmp_path / "results.json").read_text())["cases"]["synthetic100_500-small-color_5-t42"]
    assert len(case["census"]["before"]["open_per_class"]) == 100
    ws = open_run(case["run"], "cpu")
    assert ws.data.num_classes == 100 and ws.run.target == 42
    assert json.loads((ws.run.path / "mesa" / "search.json").read_text())["hidden"] == 2048
    assert artifacts.load_search(ws.run.path)["betas"][0.9]["generator"].out.in_features == 2048 + 16  # hidden + a noise chunk
    # a search toward each of the 100 classes: on a few images, with a narrow generator, to stay fast
    x, y = ws.modeling
    detected = detect(ws.run.model, x[:32], y[:32], 100, DetectionConfig(epochs=1, samples=8, hidden=64), *ws.held_out)
    assert len(detected["per_class"]) == 100 and 0 <= detected["suspect"] < 100
    assert "synthetic100:500 / small: 1 cases" in (tmp_path / "results.md").read_text()


def test_attack_recipes_set_their_settings_and_name_their_cases():
    """ours-1pct is ours (3 epochs, lr 0.01) at the paper's 1% poison, its cases apart; unknown: clear."""
    light = SweepConfig(out="x", attack_recipe="ours-1pct")
    assert (light.attack_epochs, light.attack_lr, light.attack_poison_ratio) == (3, 0.01, 0.01)
    assert attack_variant(light) == "ours-1pct-attack" and attack_variant(SweepConfig(out="x")) == ""
    with pytest.raises(MesaError, match="use one of ours, paper, ours-1pct"):
        SweepConfig(out="x", attack_recipe="gentle")


def test_a_given_base_is_fine_tuned_not_trained_again(tmp_path):
    """--base RUN (or the model's shipped base): the sweep keys its cases on that base's weights and
    trains no base of its own; a base of another model is refused in one line."""
    from mesa.errors import MesaError
    from mesa.lab.sweep.case import run_base
    from mesa.lab.sweep.plan import SweepConfig
    from mesa.method.attack import AttackConfig
    from mesa.lab.pipeline.attack_stage import run_attack

    clean, _ = run_attack(AttackConfig(data="synthetic:500", model="small", epochs=1, poison_ratio=0.0,
                                       out=str(tmp_path / "runs")))
    cfg = SweepConfig(out=str(tmp_path / "sweep"), data=["synthetic:500"], base=str(clean))
    base = run_base(cfg, "synthetic:500", "small")
    assert base["run"] == str(clean) and base["ran"] == [] and not (tmp_path / "sweep" / "bases").exists()
    assert run_base(cfg, "synthetic:500", "small")["key"] == base["key"]
    moved = shutil.copytree(clean, tmp_path / "elsewhere")  # the same weights at another place: the same cases
    assert run_base(SweepConfig(out=cfg.out, data=cfg.data, base=str(moved)), "synthetic:500", "small")["key"] == base["key"]
    with pytest.raises(MesaError, match="not a resnet18"):
        run_base(cfg, "synthetic:500", "resnet18")


def test_the_table_names_what_each_detection_flags():
    from mesa.lab.sweep.table import detection_table

    cases = [{"trigger": "binary:7", "target": 0, "neural-cleanse": {"suspect": 0, "smallest": 0}},
             {"trigger": "color:1", "target": 3, "neural-cleanse": {"suspect": None, "smallest": 5}}]
    lines = detection_table(cases)
    assert "neural-cleanse: flagged / smallest" in lines[0]
    assert lines[2] == "| binary:7 -> 0 | 0 / 0 |" and lines[3] == "| color:1 -> 3 | none / 5 |"
    assert detection_table([{"trigger": "binary:7", "target": 0}]) == []
