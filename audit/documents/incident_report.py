"""The serious-incident report draft (Art. 73): sections, field labels and wording from the incident policy,
values from the incident's record and the audits and findings it links; a manifest pins the ledger entries
and audit.json files it was drafted from, so `aiaudit verify` can check it like any other document."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from risk.incidents import IncidentPolicy, load_policy

from ..errors import AuditInputError
from ..incidents import Incident, deadline_state, existing_records, get_incident
from ..records import now_iso
from ..versions import installed_versions
from . import manifest as M
from .model import Block, Bullets, Document, KeyValues, Note, Paragraph, Section, Table
from .renderers import render
from .text import LANGS, Text

KIND = "incident-report"
LINK_FIELDS = ("audits", "findings", "history")


def _links(engine: Any, incident: Incident) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The linked audits (with their audit.json hash) and findings, as stored now."""
    audits, findings = [], []
    for audit_id in dict.fromkeys([*incident.audits, *(f.split("/", 1)[0] for f in incident.findings)]):
        row = engine.records.get_audit(audit_id)
        if row is None:
            raise AuditInputError("linked audit is no longer in this store", source=audit_id)
        audits.append({"id": audit_id, "kind": row["kind"], "model": row["model_uri"], "status": row["status"],
                       "audit_json_sha256": row["audit_sha256"]})
    results = {}
    for ref in incident.findings:
        audit_id, _, finding_id = ref.partition("/")
        results.setdefault(audit_id, {f.id: f for f in engine.load_result(audit_id).findings})
        f = results[audit_id].get(finding_id)
        findings.append({"audit": audit_id, "finding": f})
    return audits, findings


def build_manifest(incident: Incident, policy: IncidentPolicy, audits: list[dict[str, Any]], fmt: str, lang: str,
                   generated_at: str, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    from .. import __version__
    return {"manifest_version": 1,
            "document": {"kind": KIND, "format": fmt, "lang": lang, "generated_at": generated_at,
                         "renderer": installed_versions(M.RENDER_LIBRARIES)},
            "incident": {"id": incident.id, "status": incident.status, "as_of": incident.as_of.isoformat(),
                         "deadline": incident.deadline.due.isoformat(),
                         "events": [{"seq": e.seq, "event": e.event, "entry_hash": e.entry_hash} for e in incident.history]},
            "incident_policy": {"regulation": policy.regulation, "version": policy.version, "sha256": policy.sha256},
            "audits": [{k: a[k] for k in ("id", "kind", "model", "audit_json_sha256")} for a in audits],
            "versions": {"aiaudit": __version__}, "ledger_checkpoint": checkpoint}


def _text(v: Any) -> str | None:
    if v is None or v == [] or v == "":
        return None
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def _scalar(key: str, incident: Incident, policy: IncidentPolicy, audits: list[dict[str, Any]], lang: str) -> str | None:
    d = incident.deadline
    values = {
        "reporter": incident.recorded_by, "incident_id": incident.id,
        "models": sorted({a["model"] for a in audits}) or None,
        "deadline": d.due.isoformat(),
        "deadline_basis": f"{policy.category(d.category).label(lang)} — {d.basis(lang)} "
                          f"({policy.label('days_after_awareness', lang, n=d.days)})",
        "days_left": deadline_state(incident, policy, lang),
        "status": policy.status(incident.status).label(lang),
        "report_type": policy.label(f"{policy.status(incident.status).draft}_report", lang),
    }
    return _text(values[key] if key in values else getattr(incident, key))


def _table(key: str, incident: Incident, policy: IncidentPolicy, audits: list[dict[str, Any]],
           findings: list[dict[str, Any]], t: Text, lang: str) -> Table | None:
    if key == "audits" and audits:
        return Table([t.l("audit_id"), t.l("model"), t.l("status"), "SHA-256 (audit.json)"],
                     [[a["id"], a["model"], t.term(f"audit.{a['status']}", a["status"]), a["audit_json_sha256"]]
                      for a in audits], caption=policy.report.fields.audits(lang))
    if key == "findings" and findings:
        rows = []
        for x in findings:
            if (f := x["finding"]) is None:
                continue
            rows.append([x["audit"], f.id, f.title, t.status(f.status.value), t.severity(f.severity.value),
                         t.num(f.value), t.ci(f.ci)])
        return Table([t.l("audit_id"), "ID", t.l("finding"), t.l("status"), t.l("severity"), t.l("value"), t.l("ci95")],
                     rows, caption=policy.report.fields.findings(lang), kind="findings",
                     numeric=[False, False, False, False, False, True, True])
    if key == "history":
        rows = []
        for e in incident.history:
            p = e.payload
            detail = (p.get("fields", {}).get("title") if e.event == "recorded" else
                      f"{', '.join(sorted(p['changes']))}: {p['reason']}" if e.event == "updated" else
                      f"{p['from']} → {p['status']} ({p['on']}): {p['note']}")
            rows.append([str(e.seq), t.when(e.ts), e.actor, e.role, policy.label(f"event_{e.event}", lang), detail,
                         e.entry_hash[:16]])
        cols = ["#", *(policy.label(f"col_{c}", lang) for c in ("when", "actor", "role", "event", "detail", "entry_hash"))]
        return Table(cols, rows, caption=policy.report.fields.history(lang), numeric=[True] + [False] * 6)
    return None


def build(engine: Any, incident: Incident, policy: IncidentPolicy, fmt: str, lang: str,
          generated_at: str | None = None) -> Document:
    generated_at = generated_at or now_iso()
    t, rep = Text(lang), policy.report
    audits, findings = _links(engine, incident)
    from ..checkpoints import make
    manifest = build_manifest(incident, policy, audits, fmt, lang, generated_at,
                              make(engine.records, engine.settings.home).model_dump())
    notes: list[Block] = [Note(rep.template_note(lang), kind="warning" if rep.marks else "info")]
    if incident.overdue:
        notes.append(Note(f"{policy.label('overdue', lang)}: {deadline_state(incident, policy, lang)}", kind="warning"))
    sections = [Section("about", t.l("about_document")).add(
        Paragraph(f"{rep.title(lang)} — {rep.basis(lang)}", style="lead"), *notes)]
    for s in rep.sections:
        sec = Section(s.key, s.title(lang) + (f" ({s.basis(lang)})" if s.basis else ""))
        rows, missing, blocks = [], [], []
        for key in s.fields:
            label = getattr(rep.fields, key)(lang)
            if key in LINK_FIELDS:
                table = _table(key, incident, policy, audits, findings, t, lang)
                blocks.append(table) if table else missing.append(label)
            elif key == "categories":
                blocks.append(Bullets([f"{policy.category(c).label(lang)} — {policy.category(c).point(lang)}; "
                                       f"{policy.label('days_after_awareness', lang, n=policy.category(c).deadline_days)} "
                                       f"({policy.category(c).basis(lang)})" for c in incident.categories]))
            elif (value := _scalar(key, incident, policy, audits, lang)) is None:
                rows.append((label, policy.label("not_provided", lang)))
                missing.append(label)
            else:
                rows.append((label, value))
        sec.add(KeyValues(rows) if rows else None, *blocks,
                *[Note(f"{m}: {policy.label('not_provided', lang)}", kind="open") for m in missing])
        sec.status = "open" if missing and not (rows or blocks) else "partial" if missing else "filled"
        sections.append(sec)
    sections.append(Section("reminders", policy.label("reminders", lang)).add(
        Bullets([f"{r(lang)} ({r.basis(lang)})" for r in policy.reminders])))
    sections.append(_manifest_section(manifest, policy, t))
    cover = [(rep.fields.incident_id(lang), incident.id), (rep.fields.title(lang), incident.title),
             (rep.fields.status(lang), policy.status(incident.status).label(lang)),
             (rep.fields.deadline(lang), f"{incident.deadline.due.isoformat()} · {deadline_state(incident, policy, lang)}"),
             (policy.label("as_of", lang), incident.as_of.isoformat()),
             (policy.label("generated", lang), t.when(generated_at))]
    return Document(kind=KIND, lang=lang, title=rep.title(lang), subtitle=incident.title, cover=cover,
                    sections=sections, manifest=manifest, labels={**t.labels, "audit_id": rep.fields.incident_id(lang)})


def _manifest_section(manifest: dict[str, Any], policy: IncidentPolicy, t: Text) -> Section:
    inc, pol, lang = manifest["incident"], manifest["incident_policy"], t.lang
    sec = Section("manifest", policy.label("manifest", lang))
    sec.add(Table(["#", policy.label("col_event", lang), policy.label("col_entry_hash", lang)],
                  [[str(e["seq"]), policy.label(f"event_{e['event']}", lang), e["entry_hash"]] for e in inc["events"]],
                  caption=policy.label("ledger_entries", lang), kind="manifest", numeric=[True, False, False]))
    inputs = [[f"incidents.yaml {pol['regulation']} {pol['version']}", pol["sha256"]],
              *[[f"audit.json {a['id']}", a["audit_json_sha256"]] for a in manifest["audits"]]]
    sec.add(Table([t.l("input"), "SHA-256"], inputs, caption=t.l("manifest_inputs"), kind="manifest"))
    return sec


def export(engine: Any, incident_id: str, fmt: str, lang: str, out: Path, *, as_of: Any = None) -> Path:
    """Write the report draft (a file, or `<incident>_incident-report_<lang>.<ext>` in a directory); the export is
    logged to the ledger under the incident's id with the file's SHA-256."""
    from . import EXTENSIONS, FORMATS
    if fmt not in FORMATS:
        raise AuditInputError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})", source="--format")
    if lang not in LANGS:
        raise AuditInputError(f"unknown language '{lang}' (choose from {', '.join(LANGS)})", source="--lang")
    policy = load_policy()
    incident = get_incident(existing_records(engine, incident_id), incident_id, policy, as_of)
    out = Path(out)
    if out.is_dir() or not out.suffix:  # a directory, existing or not
        out = out / f"{incident_id}_{KIND}_{lang}.{EXTENSIONS[fmt]}"
    elif out.suffix.lstrip(".").lower() != EXTENSIONS[fmt]:
        raise AuditInputError(f"the file name ends in {out.suffix} but the format is {fmt}", source=str(out))
    document = build(engine, incident, policy, fmt, lang)
    data = render(document, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    engine.records.log("document.exported", incident_id, {
        "doc": KIND, "format": fmt, "lang": lang, "file": out.name, "sha256": hashlib.sha256(data).hexdigest(),
        "manifest_sha256": M.digest(document.manifest), "incident_seq": incident.history[-1].seq})
    return out


def verify(report: Any, man: dict[str, Any], records: Any, home: Path, doc_sha: str) -> None:
    """The checks of `aiaudit verify` for an incident report (the document, its events, its audits, the chain)."""
    from ..incidents import verify_incident
    from ..model_io import sha256_file
    inc = man["incident"]
    incident_id = report.audit_id = inc.get("id")
    exports = [e for e in records.entries(incident_id) if e.event == "document.exported"]
    match = next((e for e in exports if e.payload.get("sha256") == doc_sha), None)
    report.add("document", match is not None and match.payload.get("manifest_sha256") == M.digest(man),
               f"matches the export logged at {match.ts} by {match.actor} (ledger entry {match.seq})" if match else
               f"matches none of the {len(exports)} exports of this incident recorded in the ledger: the file was "
               "altered after export or never exported here")
    ledger = {e.seq: e for e in records.entries(incident_id)}
    bad = [f"#{e['seq']}" for e in inc.get("events", []) if getattr(ledger.get(e["seq"]), "entry_hash", None) != e["entry_hash"]]
    later = [e for e in ledger.values() if e.event.startswith("incident.") and e.seq > max(
        (x["seq"] for x in inc.get("events", [])), default=0)]
    report.add("incident events", not bad, (f"{len(inc.get('events', []))} ledger entries match" if not bad
                                            else f"entries {', '.join(bad)} differ from the ledger"))
    if later:
        report.add("incident updates", None, f"{len(later)} event(s) recorded after this draft; export again for them")
    problems = verify_incident(records, incident_id)
    report.add("incident record", not problems, "rows match the ledger" if not problems else problems[0])
    bad = []
    for a in man.get("audits", []):
        row = records.get_audit(a["id"])
        f = Path(row["path"]) / "audit.json" if row else None
        if row is None or not f.is_file() or not (sha256_file(f) == a["audit_json_sha256"] == row["audit_sha256"]):
            bad.append(a["id"])
    report.add("linked audits", not bad, f"{len(man.get('audits', []))} audit.json file(s) match" if not bad
               else f"changed or missing: {', '.join(bad)}")
    from ..checkpoints import ledger_items
    for name, ok, detail in ledger_items(man, records, home):
        report.add(name, ok, detail)

