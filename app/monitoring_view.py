"""Monitoring page: a model's windows over time (trend with intervals, tolerance and baseline), open breaches."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from audit.monitoring import history, open_breaches, trend

from .render import md
from .state import Ctx
from .views import open_audit


def trend_chart(rows: pd.DataFrame, title: str):
    """Value per window with its interval, the policy's tolerance (red, dashed) and the baseline's value (grey)."""
    import altair as alt
    base = alt.Chart(rows).encode(x=alt.X("window:O", title="#"))
    tooltip = ["window", "start", "value", "ci_low", "ci_high", "threshold", "status"]
    layers = [base.mark_area(opacity=0.2).encode(y=alt.Y("ci_low:Q", title=title, scale=alt.Scale(zero=False)),
                                                 y2="ci_high:Q"),
              base.mark_line(point=True).encode(y="value:Q", tooltip=tooltip,
                                                color=alt.Color("status:N", legend=None,
                                                                scale=alt.Scale(domain=["pass", "warn", "fail"],
                                                                                range=["#2e7d32", "#f9a825", "#c0392b"])))]
    for column, colour, dash in (("threshold", "#c0392b", [4, 4]), ("baseline", "#7f8c8d", [1, 0])):
        level = rows[column].dropna()
        if not level.empty:
            layers.append(alt.Chart(pd.DataFrame({column: [float(level.iloc[-1])]})).mark_rule(
                color=colour, strokeDash=dash).encode(y=f"{column}:Q"))
    return alt.layer(*layers).properties(height=220)


def monitored_models(ctx: Ctx) -> list[str]:
    return sorted({r["model_name"] for r in ctx.engine.records.list_audits(limit=100_000, kind="monitor")})


def monitoring_page(ctx: Ctx) -> None:
    st.title(ctx.t("monitoring_title"))
    st.caption(ctx.t("monitoring_intro"))
    models = monitored_models(ctx)
    if not models:
        st.info(ctx.t("no_monitoring"))
        return
    model = st.selectbox(ctx.t("col_model"), models, key="mon_model")
    windows = history(ctx.engine, model)
    versions = sorted({w["version"] for w in windows}, key=lambda v: int(v) if v.isdigit() else 0)
    version = st.selectbox(ctx.t("col_version"), versions, index=len(versions) - 1, key=f"mon_version_{model}")
    windows = [w for w in windows if w["version"] == version]
    breaches = open_breaches(ctx.engine, model, version)
    _windows_table(ctx, windows)
    st.subheader(ctx.t("monitoring_trend"))
    rows = pd.DataFrame(trend(ctx.engine, model, version))
    if rows.empty:
        st.info(ctx.t("no_trend"))
    else:
        cols = st.columns(2)
        for i, (metric, part) in enumerate(rows.groupby("metric", sort=False)):
            with cols[i % 2]:
                st.markdown(f"**{md(part['title'].iloc[-1])}**")
                st.altair_chart(trend_chart(part, metric.removeprefix("monitoring.")), width="stretch")
    st.subheader(ctx.t("open_breaches", n=len(breaches)))
    if not breaches:
        st.success(ctx.t("no_open_breaches"))
        return
    st.dataframe(pd.DataFrame(breaches).rename(columns=_labels(ctx)), hide_index=True, key="mon_breaches")
    ids = list(dict.fromkeys(b["audit_id"] for b in breaches))
    names = {w["audit_id"]: f"#{w['window']} · {w['start'] or ''} · {w['audit_id']}" for w in windows}
    c1, c2 = st.columns([4, 1])
    choice = c1.selectbox(ctx.t("review_window"), ids, format_func=lambda a: names.get(a, a), key="mon_pick")
    c2.button(ctx.t("open_audit"), key="mon_open", on_click=open_audit, args=(choice,), type="primary")


def _windows_table(ctx: Ctx, windows: list[dict[str, Any]]) -> None:
    df = pd.DataFrame(windows)[["window", "start", "end", "rows", "status", "breaches", "drifted_inputs",
                                "baseline", "audit_id"]]
    st.dataframe(df.rename(columns=_labels(ctx)), hide_index=True, key="mon_windows")


def _labels(ctx: Ctx) -> dict[str, str]:
    return {k: ctx.t(f"mon_col_{k}") for k in ("window", "start", "end", "rows", "status", "breaches", "drifted_inputs",
                                               "baseline", "audit_id", "finding_id", "title", "severity", "value",
                                               "threshold")}
