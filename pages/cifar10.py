"""CIFAR-10 page: what each defense left on real data, measured by bench/defense_cifar10.py (records in
docs/results): the planted trigger's ASR and the census of all 512 black-white 3x3 patterns, per case.
The live demo's embedded data does not show MESA's edge over the single reversed trigger; this does."""
import pandas as pd
import streamlit as st

import plotly.colors

from mesa.lab.storage.recorded import BEFORE, FLOOR, contrast, contrast_pairs, list_records, residual_rows
from mesa.method import registry
from ui.charts import grouped_bars
from ui.entry import through_app
from ui.share import choice

through_app()

METRICS = {"highest pattern ASR": "the highest ASR of the 512 patterns: what is left of the whole backdoor",
           "planted ASR": "the planted trigger's ASR (pixel-SGD: the mean of its restarts)",
           "open patterns": "how many of the 512 patterns still open the backdoor (ASR >= 0.5)"}
INTERVAL = {"highest pattern ASR": "highest CI", "planted ASR": "planted CI"}  # 95% Wilson: the error bars
PALETTE = plotly.colors.qualitative.D3  # one colour per defense of the record, in its order


@st.cache_data(max_entries=16)
def rows_of(path: str, mtime: float) -> pd.DataFrame:
    return pd.DataFrame(residual_rows(path))


st.title("Measured on CIFAR-10")
st.caption("The paper's experiment on the real CIFAR-10, with the small CNN (clean accuracy 0.85) on 2 CPU cores: "
           "one clean base, fine-tuned once per trigger with the backdoor; then the MESA search, the pixel-SGD "
           "baseline (one reversed trigger per restart), each defense retraining 10 epochs, and the census of "
           "all 512 black-white 3x3 patterns on 256 held-out images each, after every defense and on the clean base.")
records, problems = list_records()
for line in problems:
    st.warning(line)
if not records:
    st.info("No CIFAR-10 records here (docs/results/cifar10-small-*.json): run `python bench/defense_cifar10.py`.")
    st.stop()

labels = [r.label for r in records]
c1, c2 = st.columns([2, 1])
label = c1.selectbox("Measurement", labels, key=choice("record", labels[0], labels))
metric = c2.radio("Show", list(METRICS), key=choice("metric", "highest pattern ASR", list(METRICS)))
record = records[labels.index(label)]
rows = rows_of(str(record.path), record.path.stat().st_mtime)
methods = [m for m in dict.fromkeys(rows["method"]) if m != BEFORE]
default = [m for m in registry.default_defenses() if m in methods][:3] + [FLOOR]
colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(m for m in methods if m != FLOOR)} | {
    FLOOR: "#9e9e9e", BEFORE: "#222222"}
chosen = st.multiselect("Methods", [BEFORE] + methods, key=choice("methods", default, [BEFORE] + methods))

shown = rows[rows["method"].isin(chosen) & rows[metric].notna()]
if shown.empty:
    st.info("Choose at least one method measured in this record.")
else:
    order = {m: i for i, m in enumerate(chosen)}
    shown = shown.sort_values("method", key=lambda s: s.map(order), kind="stable")
    is_asr = metric != "open patterns"
    if is_asr:
        bounds = shown[INTERVAL[metric]].apply(lambda ci: ci or [None, None])
        shown = shown.assign(low=bounds.str[0].fillna(shown[metric]), high=bounds.str[1].fillna(shown[metric]))
    st.plotly_chart(grouped_bars(shown, "case", metric, "method", height=380, title=METRICS[metric], colors=colors,
                                 y_range=[0, 1] if is_asr and BEFORE in chosen else None,
                                 line=(0.5, "opens the backdoor (0.5)") if is_asr and BEFORE in chosen else None,
                                 error=("low", "high") if is_asr else None),
                    key="cifar10-bars")
    if is_asr:
        st.caption("Error bars: 95% Wilson intervals (256 images per pattern; ~1,800 held-out images for the planted "
                   "trigger). The highest of 512 patterns is a maximum of noisy rates, biased upward: the table "
                   "below gives, per row, the highest that noise alone would give (\"noise max\").")

after = rows[rows["method"] != BEFORE].assign(
    planted_highest=lambda d: d["highest pattern"] == d["case"].str.split(" -> ").str[0],
    planted_worst=lambda d: d["worst restart"].fillna(d["planted ASR"]))
per_method = after.groupby("method", sort=False)
summary = pd.DataFrame({"cases": per_method["case"].count(), "planted ASR, mean": per_method["planted ASR"].mean(),
                        "planted ASR, worst (pixel-SGD: its worst restart)": per_method["planted_worst"].max(),
                        "highest pattern ASR, mean": per_method["highest pattern ASR"].mean(),
                        "highest pattern ASR, worst": per_method["highest pattern ASR"].max(),
                        "cases with a pattern open": per_method["open patterns"].apply(lambda s: int((s > 0).sum())),
                        "highest = the planted trigger (cases)": per_method["planted_highest"].sum()})
st.subheader(f"Over the {record.cases} cases")
st.dataframe(summary.style.format(precision=3), use_container_width=True)
st.markdown("After retraining, the census says what one planted trigger cannot: whether *other* patterns still "
            "open the backdoor, and how close the rest of the distribution stays. Compare the highest pattern a "
            "defense leaves with the floor (the clean base answers some patterns too), and see in the last "
            "column whether what survives is the planted trigger itself, the one a defense should hit first.")
for a, b in contrast_pairs([m for m in methods if m != FLOOR]):
    for name in INTERVAL:
        c = contrast(rows.to_dict("records"), a, b, name)
        if c["cases"]:
            st.markdown(f"**{a} vs {b}, {name}:** higher in {c['higher']} of {c['cases']} cases, lower in "
                        f"{c['lower']} (sign test over cases: p = {c['p']:.3f}, {'' if c['p'] < 0.05 else 'not '}"
                        f"significant at 0.05); 95% intervals apart in {len(c['apart'])} "
                        f"case{'' if len(c['apart']) == 1 else 's'}{': ' + ', '.join(c['apart']) if c['apart'] else ''}.")
text = {col: rows[col].apply(lambda ci: "" if ci is None else f"{ci[0]:.3f}-{ci[1]:.3f}") for col in INTERVAL.values()}
with st.expander("Every row"):
    st.dataframe(rows.assign(**text).style.format(precision=3, na_rep=""), use_container_width=True, hide_index=True)
st.caption(f"Reproduce: `{record.command}` (reads the record `docs/results/{record.path.name}`; without "
           "`--table` it runs the cases, resumable, hours on 2 cores). docs/RESULTS.md explains the table.")
