"""Building blocks shared by the three documents: tables from audit.json, open items,
findings register, sign-off, evidence manifest.  Data come from `Sources`; words from `Text`."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Iterable

from ..figures import SUFFIX as FIGURE_SUFFIX
from ..figures import is_figure
from ..findings import Finding
from .model import Block, Bullets, Figure, KeyValues, Note, Paragraph, Section, Table
from .sources import Sources
from .text import Text

KNOWN_CHECKS = ("performance", "fairness", "slices", "explanations", "robustness", "sae")
STATUS_ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3}
MAX_ROWS = 2000
CELL_CHARS = 400


# values --------------------------------------------------------------------------
def checks_in(src: Sources) -> list[str]:
    """The known checks in their order, then any other check the audit ran (e.g. lm_robustness)."""
    return list(dict.fromkeys([*KNOWN_CHECKS, *(c for c in src.result.checks if c != "risk")]))


def scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def cell(v: Any, t: Text) -> str:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return t.ci(v)
    if isinstance(v, bool):
        return t.yes_no(v)
    if isinstance(v, (int, float)) or v is None:
        return t.num(v)
    if isinstance(v, str):
        return v[:CELL_CHARS]
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text[:CELL_CHARS] + ("…" if len(text) > CELL_CHARS else "")


def is_image(v: Any) -> bool:
    """An evidence image: a PNG, or a figure saved as data (`audit.figures`), drawn here."""
    return isinstance(v, str) and (v.lower().endswith(".png") or is_figure(v))


def figure(src: Sources, rel: str, caption: str) -> Figure:
    return Figure(src.image(rel), caption, source=rel)  # verified against its SHA-256


def cite(text: str, t: Text) -> str:
    """A bare citation in the document's language: 'Art. 10(2)(f)' -> '제10조 제2항 (f)호',
    'Annex III 5(b)' -> '부속서 III 제5호 (b)목' (English text is returned unchanged)."""
    if t.lang == "en":
        return text

    def article(m: re.Match) -> str:
        out = f"제{m.group(1)}조"
        for i, p in enumerate(re.findall(r"\((\w+)\)", m.group(2))):
            out += f" 제{p}항" if i == 0 and p.isdigit() else f" ({p})호" if i <= 1 else f" ({p})목"
        return out

    def annex(m: re.Match) -> str:
        out = f"부속서 {m.group(1)}"
        if m.group(2):
            out += f" 제{m.group(2)}호"
        for p in re.findall(r"\((\w+)\)", m.group(3) or ""):
            out += f" ({p})목"
        return out
    text = re.sub(r"\bArts?\. (\d+)((?:\(\w+\))*)", article, text)
    return re.sub(r"\bAnnex ([IVX]+)(?: (\d+))?((?:\(\w+\))*)", annex, text)


def reference(ref: str, t: Text) -> str:
    """'EU-AI-Act Art. 10(2)(f)' -> 'EU AI Act Art. 10(2)(f)' / 'EU AI법 제10조 제2항 (f)호'."""
    ref = ref.strip()
    if ref.startswith("EU-AI-Act "):
        body = ref[len("EU-AI-Act "):]
        return f"EU AI Act {body}" if t.lang == "en" else f"EU AI법 {cite(body, t)}"
    return ref


# open items ------------------------------------------------------------------------
@dataclass
class OpenItems:
    t: Text
    items: list[tuple[str, str, str]] = field(default_factory=list)  # (id, where, what)

    def add(self, where: str, what: str) -> Note:
        item_id = f"OI-{len(self.items) + 1:02d}"
        self.items.append((item_id, where, what))
        return Note(f"{item_id} · {what}", kind="open")

    def section(self) -> Section:
        t = self.t
        sec = Section("open-items", t.l("open_items"), status=None)
        if not self.items:
            return sec.add(Paragraph(t.l("no_open_items")))
        sec.add(Paragraph(t("common", "open_items_intro", n=len(self.items))))
        return sec.add(Table([t.l("id"), t.l("where"), t.l("what_is_needed"), t.l("owner"), t.l("item_status")],
                             [[i, w, what, "", t.l("open")] for i, w, what in self.items], kind="open-items"))


# tables from check details -----------------------------------------------------------
def _merge_ci_columns(keys: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Columns as (key, source keys): x_ci_low + x_ci_high become one 'x CI' column."""
    out, used = [], set()
    for k in keys:
        if k in used:
            continue
        for lo_suffix, hi_suffix in (("ci_low", "ci_high"), ("ci_lo", "ci_hi"), ("lower", "upper")):
            if k.endswith(lo_suffix):
                hi = k[: -len(lo_suffix)] + hi_suffix
                if hi in keys:
                    out.append((k[: -len(lo_suffix)] + "ci", (k, hi)))
                    used.update((k, hi))
                    break
        else:
            out.append((k, (k,)))
            used.add(k)
    return out


def _header(key: str, t: Text) -> str:
    if key in t.columns or not key.endswith("ci"):
        return t.column(key)
    base = key[:-2].rstrip("_")
    return f"{t.column(base)} {t.l('ci95')}" if base else t.l("ci95")


def table_from_rows(rows: list[dict[str, Any]], t: Text, caption: str | None = None, kind: str = "data") -> Table:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cols = _merge_ci_columns(keys)
    body, numeric = [], [False] * len(cols)
    for r in rows[:MAX_ROWS]:
        line = []
        for j, (key, src_keys) in enumerate(cols):
            if len(src_keys) == 2:
                lo, hi = r.get(src_keys[0]), r.get(src_keys[1])
                line.append(t.ci((lo, hi)) if lo is not None and hi is not None else "—")
                numeric[j] = True
            else:
                v = r.get(key)
                numeric[j] = numeric[j] or (isinstance(v, (int, float)) and not isinstance(v, bool))
                line.append(cell(v, t))
        body.append(line)
    headers = [_header(k, t) for k, _ in cols]
    if len(rows) > MAX_ROWS:
        caption = (caption or "") + " " + t("common", "rows_truncated", shown=MAX_ROWS, total=len(rows))
    return Table(headers, body, caption=caption, numeric=numeric, kind=kind)


def _title(path: list[str], t: Text) -> str:
    return " › ".join(t.column(p) if not p.isdigit() else p for p in path)


def detail_blocks(details: dict[str, Any], t: Text, path: list[str] | None = None, depth: int = 0) -> list[Block]:
    """Render a check's `details` generically: scalars as key/values, lists of dicts as tables,
    nested mappings recursively.  Evidence images are handled by `figures`."""
    path = path or []
    blocks: list[Block] = []
    scalars = [(t.column(k), cell(v, t)) for k, v in details.items() if scalar(v) and not is_image(v)]
    if scalars:
        blocks.append(KeyValues(scalars))
    for k, v in details.items():
        sub = path + [str(k)]
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            flat = [{kk: vv for kk, vv in x.items() if not is_image(vv)} for x in v]
            if any(flat):
                blocks.append(table_from_rows(flat, t, caption=_title(sub, t)))
        elif isinstance(v, list) and v and all(scalar(x) for x in v) and not all(is_image(x) for x in v):
            blocks.append(KeyValues([(_title(sub, t), ", ".join(cell(x, t) for x in v[:200]))]))
        elif isinstance(v, dict) and v:
            if all(isinstance(x, dict) for x in v.values()) and all(all(scalar(y) for y in x.values()) for x in v.values()):
                rows = [{"key": kk, **{a: b for a, b in x.items() if not is_image(b)}} for kk, x in v.items()]
                blocks.append(table_from_rows(rows, t, caption=_title(sub, t)))
            elif depth < 3:
                inner = detail_blocks(v, t, sub, depth + 1)
                if inner:
                    blocks.append(Paragraph(_title(sub, t), style="label"))
                    blocks.extend(inner)
    return blocks


def _captions(obj: Any, found: dict[str, str]) -> None:
    """Find titles given next to evidence paths anywhere in a details tree."""
    if isinstance(obj, dict):
        title = next((obj[k] for k in ("title", "caption", "name", "label") if isinstance(obj.get(k), str)), None)
        for k, v in obj.items():
            if is_image(v):
                found.setdefault(v, title or k)
            _captions(v, found)
    elif isinstance(obj, list):
        for v in obj:
            _captions(v, found)


def figures(src: Sources, check: str, t: Text) -> list[Figure]:
    """Every PNG evidence file of a check, verified against its SHA-256 and embedded."""
    captions: dict[str, str] = {}
    _captions(src.details(check) or {}, captions)
    out = []
    for rel in sorted(src.result.evidence):
        p = PurePosixPath(rel)
        if not is_image(rel) or len(p.parts) < 2 or p.parts[1] != check:
            continue
        stem = p.name.removesuffix(FIGURE_SUFFIX).removesuffix(p.suffix)
        cap = captions.get(rel) or captions.get(p.name) or stem.replace("_", " ").replace("-", " ")
        out.append(figure(src, rel, f"{t.check(check)}: {t.column(cap) if cap in t.columns else cap}"))
    return out


# findings ------------------------------------------------------------------------------
def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (STATUS_ORDER[f.status.value], -f.severity.rank, f.check, f.id))


def finding_title(f: Finding, t: Text) -> str:
    if t.lang != "en" and f.metric:
        name = t.metric(f.metric)
        if name != f.metric.split(".", 1)[-1]:
            return name
    return f.title


POPULATION_CHECKS = ("fairness", "slices", "sae")  # whose `group` is a group of people, not e.g. an input


def finding_summary(f: Finding, t: Text) -> str:
    """One sentence from the structured fields (used in the Korean documents and where no detail exists)."""
    title, group = finding_title(f, t), f.group or ""
    if group and f.check not in POPULATION_CHECKS:
        title, group = (title if group in title else f"{title} ({group})"), ""
    return t("common", "finding_summary", title=title, group=group, value=t.num(f.value),
             ci=t.ci(f.ci) if f.ci else "", threshold=t.num(f.threshold) if f.threshold is not None else "",
             status=t.status(f.status.value))


def finding_evidence(f: Finding, t: Text) -> str:
    return t("common", "finding_evidence", value=t.num(f.value), ci=t.ci(f.ci) if f.ci else "",
             threshold=t.num(f.threshold) if f.threshold is not None else "", status=t.status(f.status.value))


def findings_table(findings: list[Finding], t: Text, kind: str = "findings", with_detail: bool = True,
                   with_references: bool = False) -> Table:
    """Findings, failing first.  The register adds references (and is laid out landscape in PDF)."""
    cols = [t.l("status"), t.l("severity"), t.l("finding"), t.l("group"), t.l("value"), t.l("ci95"), t.l("threshold")]
    numeric = [False, False, False, False, True, True, True]
    if with_references:
        cols.append(t.l("references"))
        numeric.append(False)
    if with_detail:
        cols.append(t.l("detail_original") if t.lang != "en" else t.l("detail"))
        numeric.append(False)
    rows = []
    for f in sort_findings(findings):
        row = [t.status(f.status.value), t.severity(f.severity.value), f"{t.check(f.check)}: {finding_title(f, t)}",
               f.group or "", t.num(f.value), t.ci(f.ci), t.num(f.threshold) if f.threshold is not None else ""]
        if with_references:
            row.append("; ".join(reference(r, t) for r in f.references))
        if with_detail:
            row.append((f.detail or "")[:CELL_CHARS])
        rows.append(row)
    return Table(cols, rows, numeric=numeric, kind=kind)


def findings_list(findings: list[Finding], t: Text, with_detail: bool | None = None) -> Bullets:
    """Findings as readable bullets (long check messages do not fit table columns).  The check's
    own message is English; Korean documents give the structured summary instead."""
    with_detail = (t.lang == "en") if with_detail is None else with_detail
    items = []
    for f in sort_findings(findings):
        head = f"[{t.status(f.status.value)} · {t.severity(f.severity.value)}] "
        if with_detail and f.detail:
            items.append(f"{head}{t.check(f.check)}: {f.title}. {f.detail}"[:1200])
        else:
            items.append(head + finding_summary(f, t))
    return Bullets(items)


def concerns(src: Sources, checks: Iterable[str] | None = None) -> list[Finding]:
    wanted = set(checks) if checks else None
    return sort_findings(f for f in src.result.findings
                         if f.status.value != "pass" and (wanted is None or f.check in wanted))


# standard tables ----------------------------------------------------------------------------
def performance_table(src: Sources, t: Text) -> Table | None:
    rows = [f for f in src.result.findings if f.check == "performance" and f.metric]
    if not rows:
        return None
    return Table([t.l("metric"), t.l("value"), t.l("ci95"), t.l("threshold"), t.l("direction"), t.l("result")],
                 [[t.metric(f.metric), t.num(f.value), t.ci(f.ci),
                   t.num(f.threshold) if f.threshold is not None else t.l("none_declared"),
                   t.l("higher_better") if f.data.get("higher_is_better", True) else t.l("lower_better"),
                   t.status(f.status.value)] for f in rows],
                 caption=t("common", "performance_caption", rows=src.result.dataset.rows,
                           n_boot=(src.details("performance") or {}).get("n_boot", "—")),
                 numeric=[False, True, True, True, False, False])


def group_tables(src: Sources, t: Text) -> list[Table]:
    """Per-group tables wherever the checks put them (rows carrying a group label)."""
    out: list[Table] = []

    def walk(obj: Any, path: list[str]) -> None:
        if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
            if any(k in obj[0] for k in ("group", "group_value", "subgroup")):
                rows = [{k: v for k, v in x.items() if not is_image(v)} for x in obj]
                out.append(table_from_rows(rows, t, caption=_title(path, t), kind="groups"))
            return
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, path + [str(k)])
    for check in ("fairness", "slices"):
        d = src.details(check)
        if d:
            walk(d, [t.check(check)])
    return out


def coverage_table(src: Sources, t: Text) -> Table:
    rows = []
    names = checks_in(src)
    for name in names:
        run = src.result.checks.get(name)
        if run is None:
            rows.append([t.check(name), t.l("not_assessed"), "0", ""])
        else:
            state = {"completed": t.l("completed"), "skipped": t.l("skipped"), "error": t.l("check_error")}[run.status]
            rows.append([t.check(name), state, str(run.findings), run.error or ""])
    return Table([t.l("check"), t.l("state"), t.l("findings"), t.l("note")], rows, numeric=[False, False, True, False])


def not_assessed(src: Sources, check: str, t: Text) -> Note | None:
    run = src.result.checks.get(check)
    if run is not None and run.status == "completed":
        return None
    reason = "" if run is None else (run.error or "")
    reason = t.term(f"skip.{reason}", reason) if run is not None and run.status == "skipped" else reason
    return Note(t("common", "not_assessed", check=t.check(check), reason=reason), kind="warning")


# card ---------------------------------------------------------------------------------------
def card_value(card: dict[str, Any] | None, *paths: str) -> Any:
    if not card:
        return None
    for path in paths:
        obj: Any = card
        for part in path.split("."):
            obj = obj.get(part) if isinstance(obj, dict) else None
        if obj not in (None, "", [], {}):
            return obj
    return None


def value_blocks(v: Any, t: Text) -> list[Block]:
    if isinstance(v, str):
        return [Paragraph(v)]
    if isinstance(v, list) and all(scalar(x) for x in v):
        return [Bullets([cell(x, t) for x in v])]
    if isinstance(v, list) and all(isinstance(x, dict) for x in v):
        return [table_from_rows(v, t)]
    if isinstance(v, dict):
        rows = [(t.column(k), cell(x, t) if scalar(x) else cell(x, t)) for k, x in v.items()]
        return [KeyValues(rows)]
    return [Paragraph(cell(v, t))]


def from_card(card: dict[str, Any] | None, paths: tuple[str, ...], t: Text, items: OpenItems, where: str,
              what: str) -> tuple[list[Block], bool]:
    """The card's answer, or an open item when the card is silent."""
    v = card_value(card, *paths)
    if v is None:
        return [items.add(where, what)], False
    return [Paragraph(t.l("from_card"), style="label"), *value_blocks(v, t)], True


# sign-off and manifest ---------------------------------------------------------------------------
def signoff_section(src: Sources, t: Text, items: OpenItems) -> Section:
    sec = Section("sign-off", t.l("signoff"))
    s = src.signoff
    if s is None:
        sec.status = "open"
        sec.add(Paragraph(t("common", "signoff_missing")))
        sec.add(items.add(t.l("signoff"), t.l("signoff_needed")))
        sec.add(Table([t.l("signed_by"), t.l("role"), t.l("signed_at"), t.l("signature")], [["", "", "", ""]],
                      kind="signature"))
        return sec
    sec.status = "filled"
    sec.add(Paragraph(t("common", "signoff_present")))
    rows = [(t.l("signed_by"), s.who), (t.l("role"), s.role or "—"), (t.l("signed_at"), s.when)]
    if s.decision:
        rows.append((t.l("decision"), s.decision))
    if s.note:
        rows.append((t.l("note"), s.note))
    if s.audit_sha256:
        rows.append((t.l("signed_audit_sha"), s.audit_sha256))
    if s.entry_hash:
        rows.append((t.l("ledger_entry"), f"#{s.ledger_seq} · {s.entry_hash}" if s.ledger_seq else s.entry_hash))
    sec.add(KeyValues(rows))
    if s.audit_sha256 and s.audit_sha256 != src.audit_sha256:
        sec.status = "open"
        sec.add(Note(t("common", "signoff_stale"), kind="warning"))
    return sec


def manifest_section(manifest: dict[str, Any], t: Text) -> Section:
    sec = Section("manifest", t.l("manifest"))
    sec.add(Paragraph(t("common", "manifest_intro", audit_id=manifest["audit"]["id"])))
    a, m, d, p = manifest["audit"], manifest["model"], manifest["dataset"], manifest["policy"]
    inputs = [["audit.json", a["audit_json_sha256"]],
              [f"{t.l('model')} {m['uri']}", m.get("sha256") or "—"],
              [f"{t.l('dataset')} {PurePosixPath(d['path']).name} ({t.num(d['rows'])} {t.l('rows')})", d["sha256"]],
              [f"{t.l('policy')} {p['name']} {p['version']}", p["checksum"]]]
    if manifest.get("system_card"):
        inputs.append([f"{t.l('system_card')} {PurePosixPath(manifest['system_card']['path']).name}",
                       manifest["system_card"]["sha256"]])
    reg = manifest.get("regulation")
    if reg:
        inputs.append([f"{t.l('regulation')} {reg.get('name')} {reg.get('version')}", reg.get("checksum") or "—"])
    if cp := manifest.get("ledger_checkpoint"):
        inputs.append([f"{t.l('ledger_entry')} #{cp['size']} (Ed25519 {cp['key_id']})", cp["head"]])
    sec.add(Table([t.l("input"), "SHA-256"], inputs, caption=t.l("manifest_inputs"), kind="manifest"))
    ev = manifest["evidence"]
    if ev:
        sec.add(Table([t.l("artifact"), "SHA-256"], [[k, v] for k, v in ev.items()], caption=t.l("manifest_evidence"),
                      kind="manifest"))
    else:
        sec.add(Paragraph(t.l("no_evidence_files")))
    sec.add(Table([t.l("component"), t.l("version")], [[k, v] for k, v in manifest["versions"].items()],
                  caption=t.l("manifest_versions")))
    return sec


def cover_rows(src: Sources, t: Text, generated_at: str) -> list[tuple[str, str]]:
    r = src.result
    tier = (r.risk or {}).get("tier")
    rows = [(t.l("system"), r.name), (t.l("model"), f"{r.model.uri} ({r.model.format or '—'}, {r.model.task or '—'})"),
            (t.l("audit_id"), r.audit_id), (t.l("audit_date"), t.when(r.completed_at or r.created_at)),
            (t.l("audit_result"), t.term(f"audit.{r.status}")),
            (t.l("policy"), f"{r.policy.name} {r.policy.version}"),
            (t.l("dataset"), f"{PurePosixPath(r.dataset.path).name} · {t.num(r.dataset.rows)} {t.l('rows')}"),
            (t.l("risk_tier"), t.term(f"tier.{tier}", str(tier)) if tier else t.l("not_classified")),
            *([(t.l("law_text"), str(r.risk["consolidated_version"]))]
              if (r.risk or {}).get("consolidated_version") else []),
            (t.l("generated"), t.when(generated_at)),
            (t.l("signoff"), f"{src.signoff.who} · {src.signoff.when}" if src.signoff else t.l("not_signed"))]
    return rows
