"""Everything a document is drafted from: audit.json, its evidence files, the system card,
the model registry and the records store, checked against their recorded hashes first."""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import AuditInputError, IntegrityError
from ..figures import draw as draw_figure
from ..figures import is_figure
from ..model_io import sha256_file
from ..result import AuditResult


@dataclass(frozen=True)
class SignOff:
    """Who signed the audit off, when and in which role (Annex IV 2(g): reports dated and signed)."""

    who: str
    when: str
    role: str | None = None
    decision: str | None = None
    note: str | None = None
    audit_sha256: str | None = None  # the audit.json digest the sign-off was given on
    ledger_seq: int | None = None
    entry_hash: str | None = None  # the ledger entry recording the sign-off

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def coerce(cls, obj: Any) -> "SignOff | None":
        """Accept a SignOff, a mapping or an object from the review app (field names vary)."""
        if obj is None or isinstance(obj, SignOff):
            return obj
        get = obj.get if isinstance(obj, dict) else (lambda k, d=None: getattr(obj, k, d))

        def first(*names: str) -> Any:
            for n in names:
                v = get(n, None)
                if v not in (None, ""):
                    return v
            return None
        who = first("who", "signed_off_by", "signed_by", "reviewer", "username", "user", "actor", "by")
        when = first("when", "signed_off_at", "signed_at", "at", "ts", "created_at", "time")
        if who is None or when is None:
            return None

        def text(*names: str) -> str | None:
            v = first(*names)
            return None if v is None else str(v)
        seq = first("ledger_seq")
        return cls(str(who), str(when), role=text("role"), decision=text("decision", "outcome"),
                   note=text("note", "comment", "reason"), audit_sha256=text("audit_sha256"),
                   ledger_seq=int(seq) if isinstance(seq, int) else None, entry_hash=text("entry_hash"))


@dataclass
class RegistryInfo:
    description: str | None
    created_at: str | None
    aliases: list[str]
    tags: dict[str, str]
    params: dict[str, str]
    meta: dict[str, Any]  # aiaudit_model.json: features, classes, estimator, lineage


@dataclass
class Sources:
    result: AuditResult
    audit_dir: Path
    audit_sha256: str
    card: dict[str, Any] | None = None
    card_path: str | None = None
    card_sha256: str | None = None
    registry: RegistryInfo | None = None
    registry_error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    monitors: list[dict[str, Any]] = field(default_factory=list)  # the model version's monitoring windows, oldest first
    monitoring_settings: dict[str, Any] | None = None  # the post-market monitoring plan's thresholds
    monitoring_settings_from: str | None = None  # "window" (as last applied) or "policy" (none run yet)
    signoff: SignOff | None = None
    ledger_checkpoint: dict[str, Any] | None = None  # signed, at drafting time (audit.checkpoints)
    drawn: dict[str, bytes] = field(default_factory=dict, repr=False)

    def evidence_bytes(self, rel: str) -> bytes:
        """An evidence file's bytes, refused if they no longer match audit.json."""
        data = (self.audit_dir / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.result.evidence.get(rel):
            raise IntegrityError(f"evidence file {rel} does not match its SHA-256 in audit.json")
        return data

    def image(self, rel: str) -> bytes:
        """The PNG of an image evidence file: stored, or drawn from a figure's data once per export run."""
        if not is_figure(rel):
            return self.evidence_bytes(rel)
        if rel not in self.drawn:
            self.drawn[rel] = draw_figure(self.evidence_bytes(rel))
        return self.drawn[rel]

    def details(self, check: str) -> dict[str, Any] | None:
        run = self.result.checks.get(check)
        return run.details if run is not None and run.status == "completed" else None


def card_location(result: AuditResult) -> Path | None:
    rel = (result.spec or {}).get("system_card")
    if not rel:
        return None
    p = Path(rel)
    return p if p.is_absolute() else Path(result.spec["path"]).parent / p


def check_store(records: Any, audit_id: str) -> tuple[AuditResult, Path, str]:
    """Load an audit and refuse it if audit.json or an evidence file no longer matches its record."""
    row = records.get_audit(audit_id)
    if row is None:
        from ..errors import AuditInputError
        raise AuditInputError("no such audit", source=audit_id)
    audit_dir = Path(row["path"])
    audit_json = audit_dir / "audit.json"
    digest = sha256_file(audit_json)
    if digest != row["audit_sha256"]:
        raise IntegrityError(f"audit {audit_id}: audit.json does not match the SHA-256 in the records index")
    result = AuditResult.model_validate_json(audit_json.read_text())
    for rel, expected in result.evidence.items():
        f = audit_dir / rel
        if not f.is_file() or sha256_file(f) != expected:
            raise IntegrityError(f"audit {audit_id}: evidence file {rel} is missing or changed since the audit")
    return result, audit_dir, digest


def _load_card(path: Path) -> dict[str, Any] | None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        return None
    try:  # normalise through the risk engine's model when it exists
        from risk.card import SystemCard  # type: ignore[import-not-found]
        validate = getattr(SystemCard, "model_validate", None)
        if validate is not None:
            return validate(data).model_dump(mode="json", exclude_none=True)
    except Exception:
        pass
    return data


def _registry_info(engine: Any, result: AuditResult) -> RegistryInfo:
    mlflow = engine.registry.fluent()
    client = engine.registry.client
    mv = client.get_model_version(result.model.name, result.model.version)
    params: dict[str, str] = {}
    if mv.run_id:
        params = dict(client.get_run(mv.run_id).data.params)
    meta: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="aiaudit-doc-") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{result.model.uri}/data/aiaudit_model/aiaudit_model.json", dst_path=tmp)
            meta = json.loads(Path(local).read_text())
    except Exception:  # an older registration without the metadata file: fields show as unknown
        pass
    from datetime import datetime, timezone
    created = (datetime.fromtimestamp(mv.creation_timestamp / 1000, timezone.utc).isoformat(timespec="seconds")
               .replace("+00:00", "Z") if mv.creation_timestamp else None)
    return RegistryInfo(description=mv.description or None, created_at=created, aliases=list(mv.aliases or []),
                        tags=dict(mv.tags or {}), params=params, meta=meta)


def current_signoff(records: Any, audit_id: str) -> SignOff | None:
    """The review app's sign-off, when that module exists (it owns the table)."""
    try:
        from ..review import get_signoff  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        return SignOff.coerce(get_signoff(records, audit_id))
    except Exception:
        return None


def gather(engine: Any, audit_id: str, signoff: SignOff | dict | None = None, use_registry: bool = True) -> Sources:
    result, audit_dir, digest = check_store(engine.records, audit_id)
    src = Sources(result=result, audit_dir=audit_dir, audit_sha256=digest)
    card_file = card_location(result)
    if card_file is not None and card_file.is_file():
        src.card_path, src.card_sha256 = str(card_file), sha256_file(card_file)
        recorded = _recorded_card_hash(result)
        if recorded and recorded != src.card_sha256:
            raise IntegrityError(f"system card {card_file} changed since the audit")
        src.card = _load_card(card_file)
    if use_registry:
        try:
            src.registry = _registry_info(engine, result)
        except Exception as e:  # the document says the registry was not reachable
            src.registry_error = f"{type(e).__name__}: {str(e)[:200]}"
    src.history = [r for r in engine.records.list_audits(result.model.name, limit=50, kind=result.kind) if r["audit_id"] != audit_id]
    src.signoff = SignOff.coerce(signoff) if signoff is not None else current_signoff(engine.records, audit_id)
    if result.kind == "audit":
        _monitoring_plan(engine, src)
    from ..checkpoints import make
    src.ledger_checkpoint = make(engine.records, engine.settings.home).model_dump()
    return src


MAX_WINDOWS = 24  # newest windows listed in a monitoring plan


def _monitoring_plan(engine: Any, src: Sources) -> None:
    """The windows already monitored for the audited version, and the thresholds they apply: those of the newest
    window, or, before the first one, the monitoring settings of the audit's policy pack."""
    from ..checks.monitoring import NAME, MonitoringConfig
    from ..policy import load_policy
    r = src.result
    rows = [a for a in engine.records.list_audits(r.model.name, limit=10_000, kind="monitor")
            if a["model_version"] == r.model.version][:MAX_WINDOWS]
    for row in reversed(rows):
        w = engine.load_result(row["audit_id"])
        details = (w.checks.get(NAME).details if NAME in w.checks else {}) or {}
        src.monitors.append({"audit_id": w.audit_id, "window": w.window.window_index, "start": w.window.start,
                             "end": w.window.end, "rows": w.dataset.rows, "status": w.status,
                             "breaches": details.get("breaches"), "drifted_inputs": details.get("drifted_inputs", []),
                             "baseline": w.window.baseline_audit_id, "baseline_signed_off": w.window.baseline_signed_off,
                             "sha256": row["audit_sha256"], "settings": details.get("settings")})
    latest = next((m["settings"] for m in reversed(src.monitors) if m["settings"]), None)
    if latest is not None:
        src.monitoring_settings, src.monitoring_settings_from = latest, "window"
        return
    spec = r.spec
    try:
        policy = load_policy(spec.get("policy", "eu-ai-act-default"), Path(spec["path"]).parent if spec.get("path") else None)
        cfg = MonitoringConfig.model_validate(policy.check_settings(NAME, spec.get("domain")))
    except (AuditInputError, ValueError, OSError):  # the pack moved or changed: the plan says to set them
        return
    src.monitoring_settings, src.monitoring_settings_from = cfg.model_dump(mode="json"), "policy"


def _recorded_card_hash(result: AuditResult) -> str | None:
    risk = result.risk or {}
    card = risk.get("card")
    for v in (risk.get("card_sha256"), card.get("sha256") if isinstance(card, dict) else None):
        if isinstance(v, str) and len(v) == 64:
            return v
    return None
