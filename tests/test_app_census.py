"""The census views in the app, headless: the Census page (every pattern before and after each
defense, a picked pattern's details), the Probe page (edit a trigger, see its ASR on every model),
the Defense page's residual columns and the Trigger space page's census layer, on the small saved run
of tests/test_app.py (its ensemble defense took the census before and after)."""
import json

from mesa.lab.storage import artifacts
from mesa.lab.storage.ready_runs import install_ready_runs
from mesa.lab.pipeline import presets
from tests.test_app import ROOT, app, assert_clean, fresh_queue, saved_run, streamlit_testing, with_run  # noqa: F401


def plotly_specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_census_page_shows_before_and_after_with_counts(with_run):
    at = app("census")
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table["census"]) == ["before defense", "after ensemble"]
    assert {"open (ASR ≥ 0.5)", "worst trigger", "worst ASR", "planted ASR", "closure"} <= set(table.columns)
    sheets = plotly_specs(at)
    assert len(sheets) == 2 and all(len(s["data"][1]["customdata"]) == 512 for s in sheets)
    assert all(s["layout"]["shapes"] for s in sheets)  # the planted binary:170 is boxed
    assert not any(b.label == "Take the census" for b in at.button)


def test_picking_a_pattern_shows_its_asr_everywhere_and_stamped_examples(with_run):
    at = app("census")
    at.session_state["link-census-pattern"] = "binary:170"
    at.run()
    assert_clean(at)
    assert any("binary:170" in h.value for h in at.subheader)
    assert list(at.dataframe[1].value.columns) == ["before defense", "after ensemble"]
    assert any("backdoored model" in m.value for m in at.markdown) and any("after ensemble" in m.value for m in at.markdown)
    assert any(b.label == "Probe it" for b in at.button)


def test_census_page_offers_to_take_a_missing_census(with_run):
    for f in (with_run / artifacts.FOLDER).glob("census-*"):
        f.unlink()
    at = app("census")
    assert_clean(at)
    assert any("No census saved" in i.value for i in at.info)
    assert any(b.label == "Take the census" for b in at.button)


def test_probe_answers_on_every_model_and_follows_the_edits(with_run):
    at = app("probe")
    assert_clean(at)
    assert [m.label for m in at.metric if m.label != "Clean acc" and m.label != "ASR"] == ["backdoored model", "after ensemble"]
    assert at.session_state["probe-cells"] == ["#000000", "#ffffff"] * 4 + ["#000000"]  # the planted binary:170
    next(b for b in at.button if b.key == "probe-flip-0").click().run()
    assert_clean(at)
    assert at.session_state["probe-cells"][:2] == ["#ffffff", "#ffffff"]
    at.selectbox(key="probe-start").set_value("binary:0").run()
    assert at.session_state["probe-cells"] == ["#000000"] * 9
    at.toggle(key="link-probe-colour").set_value(True).run()
    assert_clean(at)
    assert len(at.color_picker) == 9
    at.color_picker(key="probe-rgb-4").pick("#ff0000").run()
    assert at.session_state["probe-cells"][4] == "#ff0000"
    assert any(t["name"] == "probe" for t in plotly_specs(at)[0]["data"])  # the star on the map
    assert any("answered in" in m.value for m in at.markdown)


def test_defense_page_shows_the_residual_and_the_floor(with_run):
    at = app("defense")
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "method" in d.value and "ASR after" in d.value)
    assert {"open before", "open after", "worst trigger after", "worst ASR after", "closure"} <= set(table.columns)
    charts = plotly_specs(at)
    assert any("Triggers still open" in c["layout"].get("title", {}).get("text", "") for c in charts)
    assert any(s.get("line", {}).get("dash") == "dot" for c in charts for s in c["layout"].get("shapes", []))


def test_trigger_space_shows_the_census_as_a_background_layer(with_run):
    at = app("trigger_space")
    assert_clean(at)
    assert at.toggle[0].value is True
    names = [t.get("name") for t in plotly_specs(at)[0]["data"]]
    assert names[0] == "census (colour: ASR)"
    at.toggle[0].set_value(False).run()
    assert "census (colour: ASR)" not in [t.get("name") for t in plotly_specs(at)[0]["data"]]


def probed(at) -> dict:
    """The Probe page's ASR per model, as shown."""
    return {m.label: m.value for m in at.metric if m.label not in ("Clean acc", "ASR")}


def test_the_probe_link_names_its_trigger_and_reopens_it(with_run):
    """The trigger being probed is in the URL (binary:N, or nine colours), and a link with it opens the
    probe on that trigger; a bad one falls back to the planted trigger."""
    at = app("probe")
    next(b for b in at.button if b.key == "probe-flip-0").click().run()
    assert at.query_params["trigger"] == "binary:426"  # 170 with its first cell flipped to white
    asr = probed(at)
    for value, cells in (("binary:426", ["#ffffff", "#ffffff"] + ["#000000", "#ffffff"] * 3 + ["#000000"]),
                         ("ff0000-" + "-".join(["000000"] * 8), ["#ff0000"] + ["#000000"] * 8),
                         ("binary:9999", ["#000000", "#ffffff"] * 4 + ["#000000"]), ("nonsense", None)):
        at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params.update(trigger=value)
        at.switch_page("pages/probe.py")
        at.run()
        assert_clean(at)
        assert at.session_state["probe-cells"] == (cells or ["#000000", "#ffffff"] * 4 + ["#000000"]), value
        if value == "binary:426":
            assert probed(at) == asr  # the same ASR on every model
            assert at.toggle(key="link-probe-colour").value is False
        if value.startswith("ff0000"):
            assert at.toggle(key="link-probe-colour").value is True and at.query_params["trigger"] == value


def test_census_and_defense_choices_come_from_the_link(with_run):
    at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(shown='["before"]', pattern="binary:9999")  # no such pattern: none picked
    at.switch_page("pages/census.py")
    at.run()
    assert_clean(at)
    assert at.multiselect[0].value == ["before"] and not at.subheader
    assert at.query_params["shown"] == '["before"]' and "pattern" not in at.query_params  # though the page stopped
    at.session_state["link-census-pattern"] = "binary:7"  # as a click on it does
    at.run()
    assert any("binary:7" in h.value for h in at.subheader) and at.query_params["pattern"] == "binary:7"
    at = streamlit_testing.AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(methods='["finetune"]', epochs="abc", ratio="7")  # bad numbers: the defaults
    at.switch_page("pages/defense.py")
    at.run()
    assert_clean(at)
    assert at.multiselect[0].value == ["finetune"]
    demo = presets.builtin()["CPU classroom demo"]["defense"]
    assert [n.value for n in at.number_input] == [demo["epochs"], demo["poison_ratio"]]
    assert at.query_params["methods"] == '["finetune"]' and at.query_params["epochs"] == str(demo["epochs"])


def test_the_probe_asks_each_pixel_sgd_restart_of_the_shipped_run(monkeypatch):
    """The shipped ready run keeps each pixel-SGD restart's defended model: the Probe answers on them."""
    monkeypatch.setenv("MESA_READY_RUNS", "1")
    install_ready_runs()
    at = app("probe")
    assert_clean(at)
    labels = [m.label for m in at.metric]
    assert {"after pixel-sgd (restart 1)", "after pixel-sgd (restart 2)", "after ensemble"} <= set(labels), labels
    assert not any("not probed here" in c.value for c in at.caption)
