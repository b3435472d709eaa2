"""The census views in the app, headless: the Census page (every pattern before and after each
defense, a picked pattern's details), the Probe page (edit a trigger, see its ASR on every model),
the Defense page's residual columns and the Trigger space page's census layer, on the small saved run
of tests/test_app.py (its ensemble defense took the census before and after)."""
import json

from mesa import artifacts
from tests.test_app import app, assert_clean, fresh_queue, saved_run, with_run  # noqa: F401  (fixtures)


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
    at.session_state["census-pick"] = "binary:170"
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
    at.toggle(key="probe-colour").set_value(True).run()
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
