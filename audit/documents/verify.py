"""`aiaudit verify FILE`: recompute a document's embedded manifest against the store.

Every entry is checked: the document's own bytes against the ledger's export record,
audit.json and each evidence artifact against their SHA-256, model, dataset, policy, system
card and library versions against audit.json and their sources, the sign-off against the
review record, and the ledger's hash chain.  Any mismatch fails the verification.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model_io import sha256_file


@dataclass
class Item:
    name: str
    ok: bool | None  # None: could not be recomputed here (reported, not a failure)
    detail: str


@dataclass
class VerifyReport:
    path: str
    format: str | None = None
    audit_id: str | None = None
    items: list[Item] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.items) and all(i.ok is not False for i in self.items)

    @property
    def mismatches(self) -> list[Item]:
        return [i for i in self.items if i.ok is False]

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        self.items.append(Item(name, ok, detail))

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "audit_id": self.audit_id, "ok": self.ok,
                "items": [i.__dict__ for i in self.items]}


def _short(h: Any) -> str:
    return str(h)[:12] if h else "—"


def _compare(report: VerifyReport, name: str, recorded: Any, actual: Any) -> None:
    report.add(name, recorded == actual, f"{recorded}" if recorded == actual else f"document says {recorded!r}, store has {actual!r}")


def verify_document(path: Path, engine: Any | None = None) -> VerifyReport:
    from . import manifest as M
    from .sources import current_signoff
    if engine is None:
        engine = _Store()
    path = Path(path)
    report = VerifyReport(str(path))
    try:
        report.format, man = M.extract(path)
    except ValueError as e:
        report.add("manifest", False, f"no readable evidence manifest: {e}")
        return report
    except json.JSONDecodeError as e:
        report.add("manifest", False, f"embedded manifest is not valid JSON: {e}")
        return report
    records = engine.records
    if "incident" in man:
        from .incident_report import verify as verify_incident_report
        verify_incident_report(report, man, records, engine.settings.home, sha256_file(path))
        return report
    audit = man.get("audit") or {}
    audit_id = report.audit_id = audit.get("id")

    # the document itself, against the ledger's export records
    doc_sha = sha256_file(path)
    exports = [e for e in records.entries(audit_id) if e.event == "document.exported"] if audit_id else []
    match = next((e for e in exports if e.payload.get("sha256") == doc_sha), None)
    if match:
        report.add("document", True, f"SHA-256 {_short(doc_sha)} matches the export logged at {match.ts} by {match.actor} "
                                     f"(ledger entry {match.seq})")
        report.add("manifest digest", match.payload.get("manifest_sha256") == M.digest(man),
                   "matches the logged export" if match.payload.get("manifest_sha256") == M.digest(man)
                   else "embedded manifest differs from the one logged at export")
    else:
        report.add("document", False, f"SHA-256 {_short(doc_sha)} matches none of the {len(exports)} exports of this audit "
                                      "recorded in the ledger: the file was altered after export or never exported here")

    row = records.get_audit(audit_id) if audit_id else None
    if row is None:
        report.add("audit", False, f"audit {audit_id!r} is not in this store ({engine.settings.home})")
        return report
    audit_dir = Path(row["path"])
    audit_json = audit_dir / "audit.json"
    if not audit_json.is_file():
        report.add("audit.json", False, f"{audit_json} is missing")
        return report
    actual = sha256_file(audit_json)
    recorded = audit.get("audit_json_sha256")
    ok = actual == recorded == row["audit_sha256"]
    report.add("audit.json", ok, f"SHA-256 {_short(actual)}" if ok else
               f"document {_short(recorded)}, file {_short(actual)}, records index {_short(row['audit_sha256'])}")
    try:
        result = json.loads(audit_json.read_text())
    except ValueError as e:
        report.add("audit.json content", False, f"not valid JSON: {e}")
        return report
    for key in ("status", "created_at"):
        _compare(report, f"audit {key}", audit.get(key), result.get(key))

    # evidence artifacts
    ev_doc: dict[str, str] = man.get("evidence") or {}
    ev_audit: dict[str, str] = result.get("evidence") or {}
    on_disk = {p.relative_to(audit_dir).as_posix() for p in (audit_dir / "evidence").rglob("*") if p.is_file()} \
        if (audit_dir / "evidence").is_dir() else set()
    bad = []
    for rel, sha in sorted(ev_doc.items()):
        f = audit_dir / rel
        if not f.is_file():
            bad.append(f"{rel}: missing")
        elif sha256_file(f) != sha:
            bad.append(f"{rel}: content changed")
        elif ev_audit.get(rel) != sha:
            bad.append(f"{rel}: audit.json records another hash")
    bad += [f"{rel}: not in the document's manifest" for rel in sorted((set(ev_audit) | on_disk) - set(ev_doc))]
    report.add("evidence", not bad, f"{len(ev_doc)} artifact(s) match" if not bad else "; ".join(bad[:20]))

    windows = man.get("monitoring_windows") or []
    if windows:
        bad = []
        for w in windows:
            wrow = records.get_audit(w.get("id") or "")
            wfile = Path(wrow["path"]) / "audit.json" if wrow else None
            if wrow is None or not wfile.is_file():
                bad.append(f"{w.get('id')}: not in this store")
            elif not (sha256_file(wfile) == w.get("audit_json_sha256") == wrow["audit_sha256"]):
                bad.append(f"{w.get('id')}: monitor.json changed")
        report.add("monitoring windows", not bad, f"{len(windows)} window(s) match" if not bad else "; ".join(bad[:20]))

    # model, dataset, policy, card, versions
    model = man.get("model") or {}
    rm = result.get("model") or {}
    diffs = [k for k in ("name", "version", "uri", "sha256") if model.get(k) != rm.get(k)]
    report.add("model", not diffs, f"{model.get('uri')} sha256 {_short(model.get('sha256'))}" if not diffs
               else f"differs from audit.json in {diffs}")
    try:
        mv = engine.registry.client.get_model_version(model.get("name"), model.get("version"))
        reg_sha = (mv.tags or {}).get("aiaudit.model_sha256")
        report.add("model registry", reg_sha == model.get("sha256"),
                   "registry records the same model SHA-256" if reg_sha == model.get("sha256")
                   else f"registry records {_short(reg_sha)}, document {_short(model.get('sha256'))}")
    except Exception as e:
        report.add("model registry", None, f"registry not reachable: {type(e).__name__}")

    ds = man.get("dataset") or {}
    rd = result.get("dataset") or {}
    if ds.get("sha256") != rd.get("sha256"):
        report.add("dataset", False, f"document {_short(ds.get('sha256'))}, audit.json {_short(rd.get('sha256'))}")
    elif Path(ds.get("path", "")).is_file():
        now = sha256_file(ds["path"])
        report.add("dataset", now == ds["sha256"], f"{Path(ds['path']).name} SHA-256 {_short(now)}" if now == ds["sha256"]
                   else f"{Path(ds['path']).name} now hashes to {_short(now)}, audited {_short(ds['sha256'])}")
    else:
        report.add("dataset", None, f"hash matches audit.json; file {ds.get('path')} not available to recompute")

    pol = man.get("policy") or {}
    rp = result.get("policy") or {}
    diffs = [k for k in ("name", "version", "checksum") if pol.get(k) != rp.get(k)]
    if diffs:
        report.add("policy", False, f"differs from audit.json in {diffs}")
    else:
        try:
            from ..policy import load_policy
            spec = result.get("spec") or {}
            current = load_policy(spec.get("policy", pol["name"]), Path(spec.get("path", ".")).parent)
            if current.version != pol.get("version"):
                report.add("policy", None, f"{pol['name']} {pol['version']} (the pack has since moved to {current.version})")
            else:
                report.add("policy", current.checksum == pol.get("checksum"),
                           f"{pol['name']} {pol['version']} checksum {_short(pol.get('checksum'))}"
                           if current.checksum == pol.get("checksum")
                           else f"{pol['name']} {pol['version']} was edited without a new version "
                                f"(now {_short(current.checksum)})")
        except Exception as e:
            report.add("policy", None, f"matches audit.json; pack not loadable here ({type(e).__name__})")

    card = man.get("system_card")
    if card:
        p = Path(card.get("path", ""))
        if p.is_file():
            now = sha256_file(p)
            report.add("system card", now == card.get("sha256"), f"{p.name} SHA-256 {_short(now)}"
                       if now == card.get("sha256") else f"{p.name} changed since the document was drafted")
        else:
            report.add("system card", None, f"{p} not available to recompute")
    elif card_location_from(result) is not None:
        report.add("system card", False, "audit names a system card but the document's manifest does not")

    reg = man.get("regulation")
    if reg:
        rr = (result.get("risk") or {}).get("regulation") or {}
        diffs = [k for k in ("name", "version", "checksum") if reg.get(k) != rr.get(k)]
        if diffs:
            report.add("regulation", False, f"differs from audit.json in {diffs}")
        else:
            try:
                from risk.regulation import load_regulation
                current = load_regulation(reg["name"])
                if current.index.version != reg.get("version"):
                    report.add("regulation", None, f"{reg['name']} {reg['version']} (the rule set has since moved to "
                                                   f"{current.index.version})")
                else:
                    report.add("regulation", current.checksum == reg.get("checksum"),
                               f"{reg['name']} {reg['version']} checksum {_short(reg.get('checksum'))}"
                               if current.checksum == reg.get("checksum")
                               else f"{reg['name']} {reg['version']} was edited without a new version")
            except Exception as e:
                report.add("regulation", None, f"matches audit.json; rule set not loadable here ({type(e).__name__})")

    versions = man.get("versions") or {}
    env = {"aiaudit": result.get("aiaudit_version"), **{k: v for k, v in (result.get("environment") or {}).items()
                                                        if k != "aiaudit"}}
    diffs = sorted(k for k in set(versions) | set(env) if versions.get(k) != env.get(k))
    report.add("versions", not diffs, f"{len(versions)} component versions match" if not diffs
               else f"differ for {diffs}")

    signoff = man.get("signoff")
    stored = current_signoff(records, audit_id)
    if signoff:
        if stored is None:
            report.add("sign-off", None if not _review_available() else False,
                       "sign-off recorded in the document; " + ("not found in the review records" if _review_available()
                                                                else "review records not available to compare"))
        else:
            same = (stored.who == signoff.get("who") and stored.when == signoff.get("when")
                    and signoff.get("audit_sha256") in (None, audit.get("audit_json_sha256")))
            report.add("sign-off", same, f"{stored.who} at {stored.when}" if same
                       else f"document {signoff.get('who')} at {signoff.get('when')}, records {stored.who} at {stored.when}")
    elif stored is not None:
        report.add("sign-off", None, f"signed off by {stored.who} at {stored.when} after this document was drafted; "
                                     "export again to include it")

    check_ledger(report, man, records, engine.settings.home)
    return report


def check_ledger(report: VerifyReport, man: dict[str, Any], records: Any, home: Path) -> None:
    """The hash chain, and the signed checkpoint the document carries: the ledger must still extend it."""
    from ..checkpoints import ledger_items
    for name, ok, detail in ledger_items(man, records, home):
        report.add(name, ok, detail)


def card_location_from(result: dict[str, Any]) -> Any:
    spec = result.get("spec") or {}
    return spec.get("system_card")


def _review_available() -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(f"{__package__.rsplit('.', 1)[0]}.review") is not None
    except (ImportError, ValueError):
        return False


class _Store:
    """The parts of the store verification reads (lighter than an AuditEngine)."""

    def __init__(self) -> None:
        from ..config import Settings
        from ..records import Records
        self.settings = Settings.from_env().ensure()
        self.records = Records(self.settings.records_db)
        self._registry = None

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from ..registry import Registry
            self._registry = Registry(self.settings)
        return self._registry
