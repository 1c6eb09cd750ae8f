"""Plan -> run checks -> findings -> store.  Validation happens before anything is written."""
from __future__ import annotations

import os
import shutil
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable


from . import __version__, checkpoints, risk_link
from .checks import AuditContext, CheckResult, available_checks
from .checks.base import AuditData, Check
from .config import Settings
from .conformance import extra_columns
from .datasets import describe, read_table
from .errors import EXIT_GATE_FAILED, EXIT_OK, AuditInputError
from .findings import Finding, Severity, Status
from .model_io import LoadedModel, sha256_file
from .policy import Policy, load_policy
from .records import Records, current_actor, now_iso
from .registry import AUDITS_EXPERIMENT, ModelRef, Registry
from .result import AuditResult, CheckRun, DatasetRecord, ModelInfo, PolicyInfo, WindowInfo
from .spec import LoadedSpec, load_spec
from .validation import requirements_met, validate_data
from .versions import installed_versions

STAGING_GRACE_SECONDS = 60
LIBRARIES = ("numpy", "pandas", "scikit-learn", "xgboost", "lightgbm", "mlflow", "shap", "lime", "fairlearn",
             "torch", "sae-lens", "transformer-lens")


@dataclass
class PreparedAudit:
    spec: LoadedSpec
    policy: Policy
    model_ref: ModelRef
    model: LoadedModel
    data: AuditData
    dataset_info: Any
    plan: list[Check]
    skipped: dict[str, str]
    card: Any = None
    classification: Any = None
    streaming: bool = False
    baseline: Any = None  # audit.monitoring.Baseline for a monitoring window
    window: WindowInfo | None = None
    population: Any = None  # already summarised data (a streamed monitoring window, audit.scale.window)


def _gate(findings: list[Finding], fail_on: Severity, needs_review: bool) -> tuple[str, int]:
    if any(f.gates(fail_on) for f in findings):
        return "failed", EXIT_GATE_FAILED
    if needs_review or any(f.status != Status.passed for f in findings):
        return "needs_review", EXIT_OK
    return "passed", EXIT_OK


def _environment() -> dict[str, str]:
    return installed_versions(LIBRARIES)


def _should_stream(spec: LoadedSpec, policy: Policy, path: Path) -> bool:
    mode = spec.spec.execution.mode
    if mode != "auto":
        return mode == "streaming"
    from .scale.sources import count_rows
    rows = count_rows(path)
    if rows is None:  # CSV: decide by size (about 100 bytes a row)
        rows = path.stat().st_size // 100
    return rows > policy.pack.limits.max_rows_in_memory


def _owner_alive(folder: Path) -> bool:
    """Whether the process named in the folder's pid file still runs (a folder without one has no owner)."""
    try:
        pid = int((folder / "pid").read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return False
    return pid > 0 and _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class AuditEngine:
    def __init__(self, settings: Settings | None = None, progress: Callable[[str], None] | None = None):
        self.settings = settings or Settings.from_env()
        self.progress = progress or (lambda msg: None)
        self._registry: Registry | None = None
        self._records: Records | None = None

    @property
    def registry(self) -> Registry:
        """Opened read-only while validating; the store is created only when an audit runs."""
        if self._registry is None:
            self._registry = Registry(self.settings, create=False)
        return self._registry

    @property
    def records(self) -> Records:
        if self._records is None:
            self._records = Records(self.settings.ensure().records_db)
        return self._records

    # 1. validate everything; write nothing -------------------------------------------
    def prepare(self, spec_path: str | Path, trust_model: bool = False,
                execution: dict[str, Any] | None = None) -> PreparedAudit:
        spec = load_spec(spec_path)
        if execution:
            from .spec import ExecutionSpec
            from .yamlio import parse_model
            merged = {**spec.spec.execution.model_dump(), **{k: v for k, v in execution.items() if v is not None}}
            spec.spec.execution = parse_model(ExecutionSpec, merged, "--backend/--scheduler")
        policy = load_policy(spec.spec.policy, Path(spec.base_dir))
        card = classification = None
        if spec.spec.system_card:
            card = risk_link.load_card(spec.resolve(spec.spec.system_card))
            classification = risk_link.classify_card(card)
        checks = available_checks()
        wanted = spec.spec.checks or policy.pack.required_checks or list(checks)
        wanted = list(dict.fromkeys(wanted + [c for c in risk_link.required_checks(classification) if c in checks]))
        unknown = [c for c in wanted if c not in checks]
        if unknown:
            raise AuditInputError(f"unknown check(s) {unknown}; available: {list(checks)}", source=spec.path)
        ref = self.registry.resolve(spec.spec.model)
        model = self.registry.load(ref, trust=trust_model)
        ds_path = spec.resolve(spec.spec.dataset.path)
        if model.task == "language_model":  # SAE from the registry, weights present, text file read
            from .lm_io import attach_sae, read_text_dataset
            attach_sae(self.registry, ref, model)
            model.estimator.check_available()
            df = read_text_dataset(ds_path)
        elif streaming := _should_stream(spec, policy, ds_path):
            if model.task != "binary" or not spec.spec.dataset.label:
                raise AuditInputError("streaming audits need a labelled binary classifier", source=spec.path)
            from .scale.population import first_chunk
            df = first_chunk(ds_path)  # validated here; every row is read when the audit runs
        else:
            df = read_table(ds_path, max_rows=policy.pack.limits.max_rows)
        data = validate_data(df, spec, model)
        plan, skipped = [], {}
        for name, check in checks.items():
            if name not in wanted or ("baseline" in check.requires and name not in (spec.spec.checks or [])):
                continue
            if "baseline" in check.requires:
                skipped[name] = "needs a baseline audit to compare with: run it with aiaudit monitor"
                continue
            reason = requirements_met(check, data, language_model=model.task == "language_model")
            if reason:
                skipped[name] = reason
            else:
                plan.append(check)
        ctx_probe = AuditContext(spec=spec, policy=policy, model=model, data=data, evidence_dir=Path("."))
        for check in plan:
            ctx_probe.settings(check)  # policy settings are validated up front
        _ = ctx_probe.positive_label
        return PreparedAudit(spec, policy, ref, model, data, describe(ds_path, df), plan, skipped, card, classification,
                             streaming=model.task != "language_model" and streaming)

    # 2. run, then publish atomically -----------------------------------------------
    def run(self, prepared: PreparedAudit, out_dir: Path | None = None) -> AuditResult:
        self.settings.ensure()
        self.recover_interrupted()
        created = datetime.now(timezone.utc)
        audit_id = f"{created:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        partial = self.settings.audits_dir / f".partial-{audit_id}"
        staging = self.settings.audits_dir / f".staging-{audit_id}"
        ref = prepared.model_ref
        self.records.log("audit.started", audit_id, {"spec_digest": prepared.spec.digest, "model": ref.uri,
                                                     "dataset_sha256": prepared.dataset_info.sha256,
                                                     **({"kind": "monitor", "baseline": prepared.window.baseline_audit_id}
                                                        if prepared.window else {})})
        try:  # from here on an interruption at any point is cleaned up and recorded as audit.failed
            (staging / "evidence").mkdir(parents=True)
            (staging / "pid").write_text(str(os.getpid()))
            os.replace(staging, partial)  # a partial directory never appears without its owner's pid
            result = self._execute(prepared, audit_id, created, partial)
            self._publish(result, partial)
        except BaseException as e:
            shutil.rmtree(staging, ignore_errors=True)
            self._fail(audit_id, partial, f"{type(e).__name__}: {e}")
            raise
        if out_dir is not None:
            self.export_result(audit_id, out_dir)
        return result

    def _execute(self, p: PreparedAudit, audit_id: str, created: datetime, partial: Path) -> AuditResult:
        population = p.population or (self._stream(p) if p.streaming else None)
        data = p.data if population is None else AuditData(population.sample_frame(), p.data.label, p.data.protected)
        domains = getattr(p.classification, "domains", None) or [None]
        ctx = AuditContext(spec=p.spec, policy=p.policy, model=p.model, data=data, evidence_dir=partial / "evidence",
                           seed=p.spec.spec.seed, domain=p.spec.spec.domain or domains[0], card=p.card,
                           classification=p.classification, population=population, progress=self.progress,
                           baseline=p.baseline)
        findings: list[Finding] = []
        metrics: dict[str, float | None] = {}
        runs: dict[str, CheckRun] = {}
        for check in p.plan:
            self.progress(f"running {check.name}")
            t0 = time.perf_counter()
            try:
                res: CheckResult = check.run(ctx, ctx.settings(check))
                runs[check.name] = CheckRun(status="completed", seconds=time.perf_counter() - t0,
                                            findings=len(res.findings), details=res.details)
            except Exception as e:  # a crashing check becomes an error finding; the audit goes on
                msg = f"{type(e).__name__}: {e}"
                res = CheckResult(findings=[Finding.make(check.name, f"{check.title}: check failed to run",
                                                         status=Status.error, severity=Severity.medium,
                                                         metric="error", detail=msg[:2000],
                                                         references=list(check.references),
                                                         data={"traceback": traceback.format_exc()[-4000:]})])
                runs[check.name] = CheckRun(status="error", seconds=time.perf_counter() - t0, findings=1, error=msg[:2000])
            findings.extend(res.findings)
            metrics.update(res.metrics)
        for name, reason in p.skipped.items():
            runs[name] = CheckRun(status="skipped", seconds=0.0, findings=0, error=reason)
        risk_block, risk_findings = risk_link.assess(p.card, p.classification,
                                                     {k: v.status for k, v in runs.items()}, findings)
        findings.extend(risk_findings)
        needs_review = bool(risk_block and risk_block.get("needs_review"))
        status, exit_code = _gate(findings, p.policy.pack.fail_on, needs_review)
        evidence_root = partial
        evidence = {f.relative_to(evidence_root).as_posix(): sha256_file(f)
                    for f in sorted((partial / "evidence").rglob("*")) if f.is_file()}
        info = p.dataset_info
        ds = p.spec.spec.dataset
        return AuditResult(
            kind="monitor" if p.window else "audit", window=p.window, audit_id=audit_id, name=p.spec.spec.name, created_at=created.isoformat(timespec="seconds").replace("+00:00", "Z"),
            completed_at=now_iso(), actor=current_actor(), aiaudit_version=__version__, status=status, exit_code=exit_code,
            spec={"digest": p.spec.digest, "path": p.spec.path, **p.spec.spec.model_dump(mode="json")},
            model=ModelInfo(name=p.model_ref.name, version=p.model_ref.version, uri=p.model_ref.uri,
                            format=p.model.meta.format, task=p.model.task, sha256=p.model.meta.sha256,
                            run_id=p.model_ref.run_id),
            dataset=DatasetRecord(path=info.path, sha256=info.sha256,
                                  rows=population.rows if population else len(p.data.frame), label=ds.label,
                                  protected=ds.protected, columns=info.columns,
                                  split=ds.audit_split if ds.split_column else None,
                                  train_rows=None if p.data.train is None or population else len(p.data.train),
                                  sample=population.plan if population else None,
                                  extra_columns=[] if p.model.task == "language_model" else extra_columns(
                                      p.data.frame, p.model.meta.features, [ds.label, ds.split_column, *ds.protected])),
            policy=PolicyInfo(name=p.policy.name, version=p.policy.version, checksum=p.policy.checksum,
                              fail_on=p.policy.pack.fail_on.value),
            risk=risk_block, findings=findings, metrics=metrics, checks=runs, evidence=evidence,
            environment=_environment())

    def _stream(self, p: PreparedAudit):
        from .scale.population import stream_population
        ds, ex = p.spec.spec.dataset, p.spec.spec.execution
        self.progress(f"streaming {Path(ds.path).name} through the {ex.backend} backend")
        return stream_population(p.spec.resolve(ds.path), p.model, ds.label, p.spec.spec.dataset.positive_label
                                 if ds.positive_label is not None else p.model.classes[-1], list(ds.protected),
                                 ds.split_column, ds.audit_split if ds.split_column else None,
                                 p.policy.pack.limits.sample_rows, p.spec.spec.seed, backend=ex.backend,
                                 scheduler=ex.scheduler, chunk_rows=ex.chunk_rows)

    def _publish(self, result: AuditResult, partial: Path) -> None:
        """MLflow run, rename into place (with the owner's pid), index row and ledger in one transaction, then
        drop the pid: a kill at any point leaves either a partial folder (recorded as failed by the next run) or a
        published one with a dead owner (indexed by the next run), see `recover_interrupted`."""
        mlflow_ids = self._log_mlflow(result, partial)
        result.mlflow = mlflow_ids
        (partial / "audit.json").write_text(result.model_dump_json(indent=2))
        self.registry.client.log_artifact(mlflow_ids["run_id"], str(partial / "audit.json"))
        self.registry.client.set_terminated(mlflow_ids["run_id"], "FINISHED")
        final = self.settings.audits_dir / result.audit_id
        os.replace(partial, final)  # the pid file moves along: until it is removed, a crash here is recoverable
        self._index(result, final)
        (final / "pid").unlink()
        self._tag_version(result)

    def _tag_version(self, result: AuditResult) -> None:
        """The version's audit tags, and a signed ledger checkpoint on the version and the audit's run (an anchor
        outside the store, docs/security.md)."""
        checkpoint = checkpoints.make(self.records, self.settings.home).dumps()
        if (result.mlflow or {}).get("run_id"):
            self.registry.client.set_tag(result.mlflow["run_id"], checkpoints.TAG, checkpoint)
        extra = {checkpoints.TAG: checkpoint}
        if result.kind == "monitor":  # the version's audit tags stay those of its audit
            self.registry.set_version_tags(result.model.name, result.model.version, {
                "aiaudit.monitor_id": result.audit_id, "aiaudit.monitor_status": result.status, **extra})
            return
        tier = (result.risk or {}).get("tier")
        tags = {"aiaudit.audit_id": result.audit_id, "aiaudit.status": result.status, **extra}
        if tier:
            tags["aiaudit.tier"] = tier
        self.registry.set_version_tags(result.model.name, result.model.version, tags)

    def _index(self, result: AuditResult, final: Path, recovered: bool = False) -> bool:
        """The index row and the ledger entries of a published audit, once (False if already indexed)."""
        audit_sha = sha256_file(final / "audit.json")
        run_id = result.mlflow.get("run_id")
        with self.records.transaction() as con:
            if con.execute("SELECT 1 FROM audits WHERE audit_id = ?", (result.audit_id,)).fetchone():
                return False
            self.records.add_audit(con, {
                "audit_id": result.audit_id, "created_at": result.created_at, "name": result.name,
                "model_name": result.model.name, "model_version": result.model.version, "model_uri": result.model.uri,
                "status": result.status, "tier": (result.risk or {}).get("tier"), "exit_code": result.exit_code,
                "run_id": run_id, "audit_sha256": audit_sha, "path": str(final), "kind": result.kind})
            for f in result.findings:
                self.records.append(con, "finding.recorded", result.audit_id,
                                    {"finding": f.id, "status": f.status.value, "severity": f.severity.value, "value": f.value})
            self.records.append(con, "audit.completed", result.audit_id,
                                {"status": result.status, "exit_code": result.exit_code, "audit_sha256": audit_sha,
                                 "run_id": run_id, **({"recovered": True} if recovered else {})})
        return True

    def _log_mlflow(self, result: AuditResult, partial: Path) -> dict[str, str]:
        from mlflow.entities import Metric, Param, RunTag
        client = self.registry.client
        exp = self.registry.experiment_id(AUDITS_EXPERIMENT)
        step = result.window.window_index if result.window else 0  # a model version's windows are a trend
        run = client.create_run(exp, run_name=f"{result.kind} {result.name}", tags={
            "aiaudit.audit_id": result.audit_id, "aiaudit.model": result.model.uri,
            "aiaudit.model_version": f"{result.model.name}/{result.model.version}",
            "aiaudit.kind": result.kind, "mlflow.note.content": f"aiaudit {result.kind} {result.audit_id}"})
        run_id = run.info.run_id
        (partial / "run_id").write_text(run_id)
        ts = int(time.time() * 1000)
        params = [Param("spec_digest", result.spec["digest"]), Param("policy.name", result.policy.name),
                  Param("policy.version", result.policy.version), Param("policy.checksum", result.policy.checksum),
                  Param("dataset.sha256", result.dataset.sha256), Param("model.uri", result.model.uri),
                  Param("audit_id", result.audit_id)]
        metrics = [Metric(_mlflow_key(k), float(v), ts, step) for k, v in result.metrics.items() if v is not None]
        tags = [RunTag("aiaudit.status", result.status), RunTag("aiaudit.exit_code", str(result.exit_code))]
        for i in range(0, max(len(metrics), 1), 900):
            client.log_batch(run_id, metrics=metrics[i:i + 900], params=params if i == 0 else [], tags=tags if i == 0 else [])
        if any((partial / "evidence").iterdir()):
            client.log_artifacts(run_id, str(partial / "evidence"), artifact_path="evidence")
        return {"run_id": run_id, "experiment_id": exp, "tracking_uri": self.settings.tracking_uri}

    def _fail(self, audit_id: str, partial: Path, reason: str) -> None:
        run_file = partial / "run_id"
        if run_file.exists():
            try:
                self.registry.client.set_terminated(run_file.read_text().strip(), "FAILED")
            except Exception:
                pass
        shutil.rmtree(partial, ignore_errors=True)
        self.records.log("audit.failed", audit_id, {"reason": reason[:1000]})

    def recover_interrupted(self) -> list[str]:
        """Settle every audit whose process died: published but not indexed -> indexed (the audit is complete);
        anything earlier -> recorded as failed and its partial output removed."""
        recovered = []
        for folder in sorted(self.settings.audits_dir.iterdir()) if self.settings.audits_dir.is_dir() else []:
            if not folder.is_dir() or _owner_alive(folder):
                continue
            if folder.name.startswith(".staging-"):  # before audit.started: nothing to record
                if time.time() - folder.stat().st_mtime > STAGING_GRACE_SECONDS:  # its pid file may not exist yet
                    shutil.rmtree(folder, ignore_errors=True)
            elif folder.name.startswith(".partial-"):
                audit_id = folder.name.removeprefix(".partial-")
                self._fail(audit_id, folder, "interrupted: the audit process ended before completing")
                recovered.append(audit_id)
            elif not folder.name.startswith(".") and (folder / "pid").exists():
                recovered.append(self._recover_published(folder))
        return recovered

    # reading -----------------------------------------------------------------------
    def _recover_published(self, final: Path) -> str:
        """An audit renamed into place whose process died before its index row (or just after it)."""
        try:
            result = AuditResult.model_validate_json((final / "audit.json").read_text())
        except (OSError, ValueError):
            partial = final.with_name(f".partial-{final.name}")
            os.replace(final, partial)
            self._fail(final.name, partial, "interrupted while publishing: audit.json unreadable")
            return final.name
        if self._index(result, final, recovered=True):
            self._tag_version(result)
        (final / "pid").unlink(missing_ok=True)
        return result.audit_id

    def load_result(self, audit_id: str) -> AuditResult:
        row = self.records.get_audit(audit_id) if self.settings.records_db.is_file() else None
        if row is None:
            raise AuditInputError("no such audit", source=audit_id)
        return AuditResult.model_validate_json((Path(row["path"]) / "audit.json").read_text())

    def audit_dir(self, audit_id: str) -> Path:
        row = self.records.get_audit(audit_id)
        if row is None:
            raise AuditInputError("no such audit", source=audit_id)
        return Path(row["path"])

    def export_result(self, audit_id: str, out_dir: Path) -> Path:
        """Copy audit.json and its evidence to `out_dir` (files appear complete or not at all)."""
        src = self.audit_dir(audit_id)
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in sorted(src.rglob("*")):
            if f.is_file():
                dst = out_dir / f.relative_to(src)
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(f".{dst.name}.tmp")
                shutil.copyfile(f, tmp)
                os.replace(tmp, dst)
        return out_dir / "audit.json"


def _mlflow_key(key: str) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9_\-. /:]", "_", key)[:250]


def run_spec(spec_path: str | Path, out_dir: Path | None = None, settings: Settings | None = None,
             trust_model: bool = False, progress: Callable[[str], None] | None = None) -> AuditResult:
    engine = AuditEngine(settings, progress)
    return engine.run(engine.prepare(spec_path, trust_model=trust_model), out_dir)
