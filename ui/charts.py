"""The app's charts, built with plotly's graph objects rather than plotly express: every student's click
reruns a page, and px figures cost ~20x more server time (px.line was 45% of the server's CPU with
ten sessions, px.bar 40% of the Defense page's run: py-spy, bench/sessions.py)."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st


def metric_charts(df: pd.DataFrame, metrics: list[str], x: str = "step", key: str = "") -> None:
    """One small line chart per metric, one line per stage (every session watching a job redraws these every 2 s)."""
    shown = [m for m in metrics if m in df and df[m].notna().any()]
    for col, m in zip(st.columns(max(1, len(shown))), shown):
        d = df[df[m].notna()]
        lines = [go.Scatter(x=g[x].to_numpy(), y=g[m].to_numpy(), name=str(stage),
                            mode="lines+markers" if len(d) < 40 else "lines")
                 for stage, g in d.groupby("stage", sort=False)]
        fig = go.Figure(lines, layout=dict(height=240, margin=dict(l=10, r=10, t=30, b=10), title=dict(text=m),
                                           showlegend=len(lines) > 1, legend=dict(orientation="h", y=-0.3),
                                           xaxis=dict(title=dict(text=x)), yaxis=dict(title=dict(text=m))))
        col.plotly_chart(fig, key=f"{key}-{m}")


def grouped_bars(long: pd.DataFrame, x: str, y: str, color: str, height: int = 300, title: str | None = None,
                 y_range=None, line: tuple[float, str] | None = None, colors: dict | None = None,
                 barmode: str = "group", error: tuple[str, str] | None = None) -> go.Figure:
    """Bars of `y` per `x`, one colour (and legend entry) per value of `color`, side by side; `line`:
    (y, label) drawn dotted across, such as a floor; `error`: the (low, high) columns of each bar's
    interval, drawn as error bars."""
    def bar(name, g):
        bars_error = None if error is None else dict(type="data", symmetric=False, array=(g[error[1]] - g[y]).to_numpy(),
                                                     arrayminus=(g[y] - g[error[0]]).to_numpy(), thickness=1)
        return go.Bar(x=g[x].to_numpy(), y=g[y].to_numpy(), name=str(name), marker_color=(colors or {}).get(name),
                      error_y=bars_error)

    bars = [bar(name, g) for name, g in long.groupby(color, sort=False)]
    layout = dict(height=height, barmode=barmode, title=dict(text=title), legend=dict(title=dict(text=color)),
                  xaxis=dict(title=dict(text=x)), yaxis=dict(title=dict(text=y), range=y_range))
    if line is not None:
        layout["shapes"] = [dict(type="line", xref="paper", x0=0, x1=1, y0=line[0], y1=line[0],
                                 line=dict(dash="dot", color="black"))]
        layout["annotations"] = [dict(xref="paper", x=1, y=line[0], text=line[1], showarrow=False,
                                      xanchor="right", yanchor="bottom")]
    return go.Figure(bars, layout=layout)


SYMBOLS = ("circle", "diamond", "square", "x", "cross", "pentagon", "hexagram", "star")


def points_by_source(df: pd.DataFrame, custom: list[str], hover: str) -> list[go.Scatter]:
    """The points of a trigger map (columns x, y, source, ...), one trace (colour and symbol) per
    source, `custom` columns as each point's customdata (as px.scatter(color=symbol="source") drew them)."""
    return [go.Scatter(x=g["x"].to_numpy(), y=g["y"].to_numpy(), mode="markers", name=str(name),
                       customdata=g[custom].to_numpy(), hovertemplate=hover,
                       marker=dict(symbol=SYMBOLS[i % len(SYMBOLS)], size=7, opacity=0.75))
            for i, (name, g) in enumerate(df.groupby("source", sort=False))]
