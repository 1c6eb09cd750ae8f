"""Figures drawn for the documents from audit.json (evidence images are embedded as they are)."""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from .sources import Sources
from .text import Text

CJK_FILES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.otf",
             "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc")


@lru_cache(maxsize=1)
def font_families() -> list[str]:
    """DejaVu for Latin text plus a CJK font for Hangul, registered with matplotlib if needed
    (its font cache may predate the fonts-noto-cjk package)."""
    from matplotlib import font_manager
    names = {f.name for f in font_manager.fontManager.ttflist}
    cjk = sorted(n for n in names if "CJK" in n and "Sans" in n and "Mono" not in n)
    if not cjk:
        for path in CJK_FILES:
            if Path(path).is_file():
                font_manager.fontManager.addfont(path)
        cjk = sorted({f.name for f in font_manager.fontManager.ttflist if "CJK" in f.name and "Mono" not in f.name})
    preferred = [n for n in cjk if n.endswith("KR")] or cjk[:1]
    return ["DejaVu Sans", *preferred]


def performance_chart(src: Sources, t: Text) -> bytes | None:
    """Point estimates with their intervals and the declared thresholds, one row per metric."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from interpret.plots import PNG

    rows = [f for f in src.result.findings if f.check == "performance" and f.value is not None and f.ci]
    if not rows:
        return None
    fig = Figure(figsize=(6.4, 0.45 * len(rows) + 1.0), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, f in enumerate(reversed(rows)):
        lo, hi = f.ci
        colour = {"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828"}.get(f.status.value, "#555555")
        ax.plot([lo, hi], [i, i], color=colour, linewidth=2.2)
        ax.plot([f.value], [i], "o", color=colour, markersize=5)
        if f.threshold is not None:
            ax.plot([f.threshold], [i], marker="|", color="black", markersize=14, markeredgewidth=1.6)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([t.metric(f.metric) for f in reversed(rows)], fontfamily=font_families(), fontsize=8)
    ax.set_xlabel(t.l("chart_value_ci"), fontfamily=font_families(), fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, metadata={"Software": None}, **PNG)
    return buf.getvalue()
