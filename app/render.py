"""Generic rendering of `checks.<name>.details`: tables, CI charts, bar and line charts, evidence images.

Checks are written by several people and keep evolving, so the app does not hard-code their
layouts: it recognises shapes (a table with `ci_low`/`ci_high`, a label column with one
number, an all-numeric curve, an evidence path) and shows whatever is present.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audit import figures

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
LABEL_COLS = ("group", "feature", "metric", "name", "slice", "label", "attribute", "layer", "feature_id", "term", "check")
VALUE_COLS = ("value", "estimate", "point", "mean", "rate", "score", "difference", "ratio", "effect")
CI_PAIRS = (("ci_low", "ci_high"), ("ci_lower", "ci_upper"), ("lower", "upper"), ("lo", "hi"), ("low", "high"))
N_COLS = ("n", "count", "size", "n_group", "group_size", "support", "rows")
BAR_COLS = ("importance", "mean_abs_shap", "mean_abs", "weight", "shap", "attribution", "coefficient")
METHOD_KEYS = {"settings", "explainer", "sampling", "background", "budget", "rules", "attributes_info", "merge",
               "config", "parameters", "method"}
EXPANDER_LABELS = ("attribute", "kind", "group", "feature", "name", "metric", "slice", "row", "decision", "layer")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
MAX_DEPTH = 4
MAX_ROWS_CHART = 40


def md(text: Any) -> str:
    """Escape a data string for st.markdown (no links, images or formatting from data)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas in CSV cells (=, +, -, @, tab, CR at the start)."""
    from audit.csvsafe import neutralise
    return neutralise(value)


def to_csv(df: pd.DataFrame) -> bytes:
    """CSV download with formulas neutralised, UTF-8 with a BOM so Excel reads Korean text correctly."""
    safe = df.copy()
    safe.columns = [csv_safe(str(c)) for c in safe.columns]
    for col in safe.columns:
        if safe[col].dtype == object:
            safe[col] = safe[col].map(csv_safe)
    return safe.to_csv(index=False).encode("utf-8-sig")


def evidence_file(audit_dir: Path, rel: str) -> Path | None:
    """A file inside the audit directory, or None (paths that escape it are ignored)."""
    try:
        root = audit_dir.resolve()
        p = (root / rel).resolve()
    except (OSError, ValueError):
        return None
    return p if p.is_relative_to(root) and p.is_file() else None


@st.cache_data(max_entries=256, show_spinner=False)
def _drawn(spec: bytes) -> bytes:
    """A figure saved as data, drawn once per distinct file content."""
    return figures.draw(spec)


def show_evidence(audit_dir: Path, paths: list[str], shown: set[str], key: str) -> None:
    for i, rel in enumerate(paths):
        if rel in shown:
            continue
        p = evidence_file(audit_dir, rel)
        if p is None:
            continue
        shown.add(rel)
        if figures.is_figure(rel):
            st.image(_drawn(p.read_bytes()), caption=rel)
        elif p.suffix.lower() in IMAGE_EXT:
            st.image(str(p), caption=rel)
        else:
            st.download_button(rel, p.read_bytes(), file_name=p.name, key=f"{key}-ev-{i}-{rel}", on_click="ignore")


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.4g}"
    return "" if v is None else str(v)


def _pretty(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    flat = []
    for r in rows:
        out = {}
        for k, v in r.items():
            if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v) and k in ("ci", "interval"):
                out[f"{k}_low"], out[f"{k}_high"] = v
            elif _is_scalar(v):
                out[k] = v
            else:
                out[k] = str(v)
        flat.append(out)
    return pd.DataFrame(flat)


def _first(cols: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in cols}
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def _label_col(df: pd.DataFrame) -> str | None:
    col = _first(list(df.columns), LABEL_COLS)
    if col:
        return col
    text = [c for c in df.columns if df[c].dtype == object]
    return text[0] if text else None


def _numeric(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def ci_columns(df: pd.DataFrame) -> tuple[str, str, str] | None:
    cols = list(df.columns)
    for lo, hi in CI_PAIRS:
        lo_c, hi_c = _first(cols, (lo,)), _first(cols, (hi,))
        if lo_c and hi_c:
            value = _first(cols, VALUE_COLS)
            if value is None:
                rest = [c for c in _numeric(df) if c not in (lo_c, hi_c) and c.lower() not in N_COLS]
                value = rest[0] if rest else None
            if value is not None:
                return value, lo_c, hi_c
    return None


def suffixed_ci_metrics(df: pd.DataFrame) -> list[str]:
    """Metrics stored as `X`, `X_ci_low`, `X_ci_high` columns (e.g. selection_rate per group)."""
    cols = set(df.columns)
    return [c[: -len("_ci_low")] for c in df.columns
            if c.endswith("_ci_low") and c[: -len("_ci_low")] in cols and f"{c[: -len('_ci_low')]}_ci_high" in cols]


def _ci_chart(data: pd.DataFrame, label: str, value: str, lo: str, hi: str, colour: str | None,
              n_col: str | None, threshold: float | None = None):
    import altair as alt
    data = data.dropna(subset=[value, lo, hi]).copy()
    if data.empty:
        return None
    data[label] = data[label].astype(str)
    tooltip = [c for c in dict.fromkeys((label, colour, value, lo, hi, n_col)) if c]
    enc: dict[str, Any] = {"y": alt.Y(f"{label}:N", sort=None, title=None, axis=alt.Axis(labelLimit=260))}
    if colour:
        enc["color"] = alt.Color(f"{colour}:N", title=None)
        enc["yOffset"] = alt.YOffset(f"{colour}:N")
    rule = alt.Chart(data).mark_rule(strokeWidth=2).encode(
        x=alt.X(f"{lo}:Q", title=value, scale=alt.Scale(zero=False)), x2=f"{hi}:Q", tooltip=tooltip, **enc)
    point = alt.Chart(data).mark_point(filled=True, size=70).encode(x=f"{value}:Q", tooltip=tooltip, **enc)
    layers = [rule, point]
    if n_col:
        data["_n"] = "n=" + data[n_col].map(_fmt)
        layers.append(alt.Chart(data).mark_text(align="left", dx=6, fontSize=11).encode(x=f"{hi}:Q", text="_n:N", **enc))
    if threshold is not None:
        layers.append(alt.Chart(pd.DataFrame({"t": [threshold]})).mark_rule(strokeDash=[4, 4], color="#c0392b").encode(x="t:Q"))
    rows = data[label].nunique() * (data[colour].nunique() if colour else 1)
    return alt.layer(*layers).properties(height=max(90, 24 * rows + 30))


def _colour_col(df: pd.DataFrame, label: str) -> str | None:
    """When labels repeat (e.g. one row per group and rate), the text column that tells the rows apart."""
    if df[label].is_unique:
        return None
    cands = [c for c in df.columns if c != label and df[c].dtype == object and 1 < df[c].nunique() <= 12]
    return next((c for c in cands if not df.duplicated([label, c]).any()), cands[0] if cands else None)


def chart_for(df: pd.DataFrame):
    """An Altair chart for a recognised table shape, or None."""
    import altair as alt
    if df.empty or len(df) > 200:
        return None
    label = _label_col(df)
    n_col = _first(list(df.columns), N_COLS)
    ci = ci_columns(df)
    if ci and label:
        value, lo, hi = ci
        colour = _colour_col(df, label)
        thr = _first(list(df.columns), ("threshold",))
        t = df[thr].dropna().unique() if thr and pd.api.types.is_numeric_dtype(df[thr]) else []
        return _ci_chart(df, label, value, lo, hi, colour, n_col, float(t[0]) if len(t) == 1 else None)
    metrics = suffixed_ci_metrics(df)
    if metrics and label:
        keep = [c for c in df.columns if c != label and df[c].dtype == object] + ([n_col] if n_col else [])
        long = pd.concat([df[keep].assign(**{label: df[label].astype(str), "metric": m, "value": df[m],
                                             "ci_low": df[f"{m}_ci_low"], "ci_high": df[f"{m}_ci_high"]})
                          for m in metrics], ignore_index=True)
        long = long.dropna(subset=["value", "ci_low", "ci_high"])
        if long.empty:
            return None
        if (df[label].is_unique and long["value"].between(0, 1).all() and long["ci_low"].between(0, 1).all()
                and long["ci_high"].between(0, 1).all()):
            return _ci_chart(long, label, "value", "ci_low", "ci_high", "metric" if len(metrics) > 1 else None, n_col)
        charts = []
        for m in metrics:
            part = long[long["metric"] == m].drop(columns=["metric"]).rename(columns={"value": m})
            chart = _ci_chart(part, label, m, "ci_low", "ci_high", _colour_col(part, label), n_col)
            if chart is not None:
                charts.append(chart)
        return alt.vconcat(*charts) if charts else None
    nums = _numeric(df)
    if label and len(df) <= MAX_ROWS_CHART:
        bar = _first(nums, BAR_COLS) or (nums[0] if len(nums) == 1 else None)
        if bar:
            data = df.dropna(subset=[bar]).copy()
            data[label] = data[label].astype(str)
            return alt.Chart(data).mark_bar().encode(
                x=alt.X(f"{bar}:Q"), y=alt.Y(f"{label}:N", sort="-x", title=None),
                color=alt.condition(f"datum['{bar}'] < 0", alt.value("#2e86c1"), alt.value("#c0392b")),
                tooltip=[label, bar]).properties(height=max(90, 22 * len(data)))
    if len(nums) >= 2 and len(nums) == len(df.columns) and len(df) >= 3:
        x = nums[0]
        long = df.melt(id_vars=[x], value_vars=nums[1:], var_name="series", value_name="y")
        return alt.Chart(long).mark_line(point=True).encode(x=f"{x}:Q", y="y:Q", color="series:N",
                                                            tooltip=[x, "series", "y"])
    return None


def render_table(rows: list[dict[str, Any]], key: str) -> None:
    df = _frame(rows)
    chart = chart_for(df)
    if chart is not None:
        st.altair_chart(chart, width="stretch")
    st.dataframe(df, hide_index=True, key=f"{key}-df")


def _is_config(v: Any, depth: int = 0) -> bool:
    """Settings-like values: only scalars, short scalar lists and nested dicts of those."""
    if _is_scalar(v):
        return not _looks_like_evidence(v)
    if isinstance(v, list):
        return len(v) <= 12 and all(_is_scalar(x) and not _looks_like_evidence(x) for x in v)
    if isinstance(v, dict):
        return depth < 2 and all(_is_config(x, depth + 1) for x in v.values())
    return False


def _kv(obj: dict[str, Any], key: str) -> None:
    rows = []
    for k, v in obj.items():
        if isinstance(v, dict):
            rows += [(f"{_pretty(k)} · {_pretty(kk)}", _fmt(vv) if _is_scalar(vv) else ", ".join(map(_fmt, vv))
                      if isinstance(vv, list) else str(vv)) for kk, vv in v.items()]
        else:
            rows.append((_pretty(k), _fmt(v) if _is_scalar(v) else ", ".join(map(_fmt, v))))
    st.dataframe(pd.DataFrame(rows, columns=["setting", "value"]), hide_index=True, key=f"{key}-kv")


def render_details(obj: Any, audit_dir: Path, key: str, shown: set[str], depth: int = 0, *,
                   lang: str = "en", settings_label: str = "Method and settings", nested: bool = False) -> None:
    """Render a JSON value from `details`: tables and charts first, settings in an expander, images inline.

    `nested` is True inside an expander (Streamlit cannot nest expanders).
    """
    kw = {"lang": lang, "settings_label": settings_label}
    if depth > MAX_DEPTH:
        st.json(obj, expanded=False)
        return
    if isinstance(obj, dict):
        if set(obj) and set(obj) <= {"en", "ko"} and all(isinstance(v, str) for v in obj.values()):
            st.markdown(md(obj.get(lang) or obj.get("en") or next(iter(obj.values()))))  # text in both languages
            return
        config = {k: v for k, v in obj.items() if _is_config(v)}
        curves = _curves(obj)
        in_curves = {k for g in curves for k in g}
        config = {k: v for k, v in config.items() if k not in in_curves}
        method = {k: v for k, v in obj.items() if k in METHOD_KEYS and k not in config} if depth == 0 else {}
        if config or method:
            if depth == 0 and not nested:
                with st.expander(settings_label):
                    if config:
                        _kv(config, key)
                    for k, v in method.items():
                        st.markdown(f"**{md(_pretty(k))}**")
                        render_details(v, audit_dir, f"{key}-{k}", shown, depth + 1, nested=True, **kw)
            else:
                if config:
                    _kv(config, key)
                method = {}
        for group in curves:
            st.line_chart(pd.DataFrame({k: obj[k] for k in group}), height=200)
        rest = sorted((k for k in obj if k not in config and k not in method and k not in in_curves
                       and obj[k] not in ({}, [], None)), key=lambda k: _weight(obj[k]))
        for k in rest:
            v = obj[k]
            if _looks_like_evidence(v):
                show_evidence(audit_dir, [v], shown, f"{key}-{k}")
                continue
            st.markdown(f"{'#' * min(4 + depth, 6)} {md(_pretty(k))}")
            render_details(v, audit_dir, f"{key}-{k}", shown, depth + 1, nested=nested, **kw)
    elif isinstance(obj, list):
        if obj and all(isinstance(r, dict) for r in obj):
            if all(all(_is_config(v, 1) for v in r.values()) for r in obj):
                render_table(obj, key)
                return
            for i, r in enumerate(obj[:50]):
                title = " · ".join(_fmt(r[c]) for c in EXPANDER_LABELS if _is_scalar(r.get(c)) and r.get(c) is not None)
                title = md(title[:120] or f"#{i + 1}")
                if nested:
                    st.markdown(f"**{title}**")
                    render_details(r, audit_dir, f"{key}-{i}", shown, depth + 1, nested=True, **kw)
                else:
                    with st.expander(title, expanded=i == 0 and len(obj) <= 6):
                        render_details(r, audit_dir, f"{key}-{i}", shown, depth + 1, nested=True, **kw)
        elif obj and all(_looks_like_evidence(v) for v in obj):
            show_evidence(audit_dir, obj, shown, key)
        elif all(_is_scalar(v) for v in obj):
            st.dataframe(pd.DataFrame({"": [_fmt(v) for v in obj]}), hide_index=True, key=f"{key}-list")
        else:
            st.json(obj, expanded=False)
    elif _looks_like_evidence(obj):
        show_evidence(audit_dir, [obj], shown, key)
    else:
        st.text(_fmt(obj))


def _weight(v: Any) -> int:
    """Results before method: tables first, then sections holding tables or evidence, then the rest."""
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return 0
    if _looks_like_evidence(v) or _has_results(v, 2):
        return 1
    return 2


def _has_results(v: Any, depth: int) -> bool:
    if isinstance(v, dict) and depth > 0:
        return any(_looks_like_evidence(x) or (isinstance(x, list) and x and all(isinstance(y, dict) for y in x))
                   or _has_results(x, depth - 1) for x in v.values())
    return False


def _curves(obj: dict[str, Any]) -> list[list[str]]:
    """Keys holding numeric lists of one length (e.g. a deletion curve and its random baseline), grouped."""
    by_len: dict[int, list[str]] = {}
    for k, v in obj.items():
        if (isinstance(v, list) and len(v) >= 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                        for x in v)):
            by_len.setdefault(len(v), []).append(k)
    return list(by_len.values())


def _looks_like_evidence(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("evidence/") and len(v) < 500
