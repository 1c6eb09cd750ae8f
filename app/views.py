"""Inventory, start-an-audit and user-administration pages."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audit import review
from audit.errors import AuditInputError
from audit.users import Role

from .render import md
from .state import Ctx, attempt, flash, load_result, model_versions

SEVERITIES = ("critical", "high", "medium", "low", "info")


def open_audit(audit_id: str) -> None:
    """Button callback: switch to the audit page showing `audit_id`."""
    st.session_state["current_audit"] = audit_id
    st.session_state["page"] = "audit"
    st.query_params["audit"] = audit_id


# inventory ------------------------------------------------------------------------------
def inventory_rows(ctx: Ctx) -> list[dict[str, Any]]:
    engine = ctx.engine
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for a in engine.records.list_audits(limit=100_000):  # newest first
        latest.setdefault((a["model_name"], a["model_version"]), a)
    versions = {(v["name"], v["version"]): v for v in model_versions(engine)}
    rows = []
    for key in sorted(set(versions) | set(latest), key=lambda k: (k[0], -int(k[1]) if k[1].isdigit() else 0)):
        v, a = versions.get(key, {}), latest.get(key)
        row: dict[str, Any] = {"model": key[0], "version": key[1], "aliases": ", ".join(v.get("aliases", [])),
                               "tier": (a or {}).get("tier") or v.get("tags", {}).get("aiaudit.tier") or "",
                               "audit_id": a["audit_id"] if a else None, "audited": a["created_at"] if a else "",
                               "status": a["status"] if a else ctx.t("never_audited"),
                               "signed_off_by": "", "signed_off_at": ""}
        counts: dict[str, int] = {}
        if a:
            try:
                result = load_result(engine, a["audit_id"])
                counts = review.open_findings_by_severity(result, review.current_dispositions(engine.records, a["audit_id"]))
            except Exception:  # unreadable audit: show it without counts
                counts = {}
            signoff = review.get_signoff(engine.records, a["audit_id"])
            if signoff:
                row["signed_off_by"], row["signed_off_at"] = signoff["signed_off_by"], signoff["signed_off_at"]
        for sev in SEVERITIES:
            row[f"open_{sev}"] = counts.get(sev, 0)
        rows.append(row)
    return rows


def inventory_page(ctx: Ctx) -> None:
    st.title(ctx.t("inventory_title"))
    st.caption(ctx.t("inventory_intro"))
    rows = inventory_rows(ctx)
    if not rows:
        st.info(ctx.t("no_models"))
        return
    df = pd.DataFrame(rows)
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    query = c1.text_input(ctx.t("search"), key="inv_search")
    tiers = c2.multiselect(ctx.t("filter_tier"), sorted({r["tier"] for r in rows if r["tier"]}), key="inv_tier",
                           placeholder=ctx.t("choose"))
    statuses = c3.multiselect(ctx.t("filter_status"), sorted({r["status"] for r in rows}), key="inv_status",
                              placeholder=ctx.t("choose"))
    signed = c4.selectbox(ctx.t("filter_signoff"), ["any", "yes", "no"], key="inv_signed",
                          format_func=lambda s: ctx.t(f"signoff_{s}"))
    if query:
        df = df[df["model"].str.contains(query, case=False, regex=False)]
    if tiers:
        df = df[df["tier"].isin(tiers)]
    if statuses:
        df = df[df["status"].isin(statuses)]
    if signed != "any":
        df = df[(df["signed_off_by"] != "") == (signed == "yes")]
    order = ["model", "version", "aliases", "tier", "status", *[f"open_{s}" for s in SEVERITIES], "signed_off_by",
             "signed_off_at", "audited", "audit_id"]
    df = df[order]
    labels = {"model": ctx.t("col_model"), "version": ctx.t("col_version"), "aliases": ctx.t("col_aliases"),
              "tier": ctx.t("col_tier"), "audit_id": ctx.t("col_audit"), "audited": ctx.t("col_audited_at"),
              "status": ctx.t("col_status"), "signed_off_by": ctx.t("col_signed_off"),
              "signed_off_at": ctx.t("col_signed_at"),
              **{f"open_{s}": ctx.t("col_open", sev=s) for s in SEVERITIES}}
    st.dataframe(df.rename(columns=labels), hide_index=True, key="inv_table")
    audited = df[df["audit_id"].notna()]
    if audited.empty:
        return
    options = list(audited["audit_id"])
    names = {r["audit_id"]: f"{r['model']} v{r['version']} · {r['audited']} · {r['status']}" for _, r in audited.iterrows()}
    c1, c2 = st.columns([4, 1])
    choice = c1.selectbox(ctx.t("choose_audit"), options, format_func=names.get, key="inv_pick")
    c2.button(ctx.t("open_audit"), key="inv_open", on_click=open_audit, args=(choice,), type="primary")
    with st.expander(ctx.t("all_audits")):
        all_rows = ctx.engine.records.list_audits(limit=500)
        st.dataframe(pd.DataFrame(all_rows).drop(columns=["path", "run_id"], errors="ignore"), hide_index=True,
                     key="inv_all")


# start an audit ------------------------------------------------------------------------------
def _bundled_datasets() -> dict[str, Path]:
    from audit.datasets import BUILTIN, builtin_path
    return {name: builtin_path(name) for name in BUILTIN}


@st.cache_data(show_spinner=False)
def _bundled_by_sha() -> dict[str, str]:
    from audit.model_io import sha256_file
    return {sha256_file(p): name for name, p in _bundled_datasets().items()}


def _known_files(ctx: Ctx) -> tuple[dict[str, str], dict[str, str]]:
    """Datasets and system cards used by earlier audits (label -> path)."""
    datasets: dict[str, str] = {f"{k} (bundled)": str(v) for k, v in _bundled_datasets().items()}
    cards: dict[str, str] = {}
    root = Path(__file__).resolve().parent.parent / "examples"
    for p in sorted(root.glob("**/*.yaml")):
        if "card" in p.name:
            cards[str(p.relative_to(root.parent))] = str(p)
    for a in ctx.engine.records.list_audits(limit=200):
        try:
            spec = load_result(ctx.engine, a["audit_id"]).spec
        except Exception:
            continue
        base = Path(spec.get("path", ".")).parent
        ds = (spec.get("dataset") or {}).get("path")
        if ds:
            p = (base / ds).resolve()
            if p.is_file():
                datasets.setdefault(p.name, str(p))
        card = spec.get("system_card")
        if card:
            p = (base / card).resolve()
            if p.is_file():
                cards.setdefault(p.name, str(p))
    return datasets, cards


def _save_upload(ctx: Ctx, upload: Any) -> str:
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    name = upload.name.lower()
    suffix = next((s for s in (".csv.gz", ".csv", ".parquet", ".yaml", ".yml") if name.endswith(s)), None)
    if suffix is None:
        raise AuditInputError("unsupported file type", source=upload.name)
    dest = ctx.engine.settings.home / "uploads" / f"{digest}{suffix}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        dest.write_bytes(data)
    return str(dest)


def _upload_or_error(ctx: Ctx, upload: Any) -> str | None:
    if upload is None:
        return None
    try:
        return _save_upload(ctx, upload)
    except AuditInputError as e:
        st.error(md(str(e)))
        return None


def _columns(path: str) -> list[str]:
    """Column names from the file header (the engine validates the data itself when the audit runs)."""
    try:
        if path.lower().endswith(".parquet"):
            import pyarrow.parquet as pq
            return list(pq.read_schema(path).names)
        return [str(c) for c in pd.read_csv(path, nrows=5, sep="\t" if path.lower().endswith(".tsv") else ",").columns]
    except Exception:
        return []


def _previous_spec(ctx: Ctx, model: str) -> dict[str, Any]:
    name = model.split("/")[1] if model.count("/") >= 2 else ""
    for a in ctx.engine.records.list_audits(name, limit=1):
        try:
            return dict(load_result(ctx.engine, a["audit_id"]).spec)
        except Exception:
            return {}
    return {}


def start_page(ctx: Ctx) -> None:
    st.title(ctx.t("start_title"))
    if not ctx.can("audit.start"):
        st.warning(ctx.t("reviewer_only"))
        return
    st.caption(ctx.t("start_intro"))
    versions = model_versions(ctx.engine)
    if not versions:
        st.info(ctx.t("no_models"))
        return
    uris = [f"models:/{v['name']}/{v['version']}" for v in versions]
    model = st.selectbox(ctx.t("model_version"), uris, key="start_model")
    prev = _previous_spec(ctx, model)
    prev_ds = prev.get("dataset") or {}
    datasets, cards = _known_files(ctx)
    prev_path = str((Path(prev.get("path", ".")).parent / prev_ds["path"]).resolve()) if prev_ds.get("path") else None
    if prev_path is None:  # never audited: the bundled dataset the version was trained on, by its recorded hash
        version = next(v for v in versions if f"models:/{v['name']}/{v['version']}" == model)
        bundled = _bundled_by_sha()
        name = bundled.get(version["tags"].get("aiaudit.dataset_sha256", ""))
        if name:
            from audit.datasets import BUILTIN, builtin_path
            prev_path = str(builtin_path(name).resolve())
            prev_ds = {"label": BUILTIN[name][1], "split_column": "split"}
    ds_labels = list(datasets) + [ctx.t("upload")]
    ds_index = next((i for i, k in enumerate(datasets) if datasets[k] == prev_path), 0)
    ds_choice = st.selectbox(ctx.t("dataset"), ds_labels, index=ds_index, key=f"start_ds-{model}")
    ds_path = datasets.get(ds_choice)
    if ds_choice == ctx.t("upload"):
        up = st.file_uploader(ctx.t("upload_dataset"), type=["csv", "gz", "parquet"], key=f"start_upload-{model}")
        ds_path = _upload_or_error(ctx, up)
    if not ds_path:
        return
    cols = _columns(ds_path)
    none = ctx.t("none")

    def pick(label: str, key: str, default: str | None) -> str | None:
        opts = [none] + cols
        value = st.selectbox(label, opts, index=opts.index(default) if default in opts else 0, key=key)
        return None if value == none else value

    c1, c2 = st.columns(2)
    with c1:
        label = pick(ctx.t("label_col"), f"start_label-{model}", prev_ds.get("label"))
        protected = st.multiselect(ctx.t("protected_cols"), cols, key=f"start_protected-{model}", placeholder=ctx.t("choose"),
                                   default=[c for c in prev_ds.get("protected", []) if c in cols])
        positive = st.text_input(ctx.t("positive_label"), key=f"start_positive-{model}",
                                 value="" if prev_ds.get("positive_label") is None else str(prev_ds.get("positive_label")))
    with c2:
        split = pick(ctx.t("split_col"), f"start_split-{model}", prev_ds.get("split_column"))
        audit_split = st.text_input(ctx.t("audit_split"), value=prev_ds.get("audit_split", "test"), key=f"start_asplit-{model}")
        train_split = st.text_input(ctx.t("train_split"), value=prev_ds.get("train_split") or "train", key=f"start_tsplit-{model}")
    card_labels = [none] + list(cards) + [ctx.t("upload")]
    prev_card = (str((Path(prev.get("path", ".")).parent / prev["system_card"]).resolve())
                 if prev.get("system_card") else None)
    card_index = next((i for i, k in enumerate(card_labels) if cards.get(k) == prev_card), 0)
    card_choice = st.selectbox(ctx.t("system_card"), card_labels, index=card_index, key=f"start_card-{model}")
    card_path = cards.get(card_choice)
    if card_choice == ctx.t("upload"):
        up = st.file_uploader(ctx.t("system_card"), type=["yaml", "yml"], key=f"start_card_upload-{model}")
        card_path = _upload_or_error(ctx, up)
    from audit.policy import bundled_policies
    policies = list(bundled_policies())
    prev_policy = prev.get("policy")
    if prev_policy and prev_policy not in policies:  # a policy file used by the previous audit
        p = Path(prev_policy) if Path(prev_policy).is_absolute() else Path(prev.get("path", ".")).parent / prev_policy
        if p.is_file():
            policies.append(str(p.resolve()))
            prev = {**prev, "policy": str(p.resolve())}
    c1, c2 = st.columns(2)
    policy = c1.selectbox(ctx.t("policy"), policies, key=f"start_policy-{model}",
                          index=policies.index(prev["policy"]) if prev.get("policy") in policies else 0)
    domains = [none, "credit", "employment", "education", "insurance", "justice", "public_services", "general"]
    domain = c2.selectbox(ctx.t("domain"), domains, key=f"start_domain-{model}",
                          index=domains.index(prev["domain"]) if prev.get("domain") in domains else 0)
    from audit.checks import available_checks
    all_checks = list(available_checks())
    checks = st.multiselect(ctx.t("checks"), all_checks, default=[], key="start_checks",
                            placeholder=ctx.t("all_checks"))
    name = st.text_input(ctx.t("audit_name"), value=prev.get("name") or model.split("/")[1], key=f"start_name-{model}")
    if st.button(ctx.t("start_button"), type="primary", key="start_go"):
        dataset: dict[str, Any] = {"path": ds_path, "label": label, "protected": protected}
        if positive.strip():
            dataset["positive_label"] = positive.strip()
        if split:
            dataset.update(split_column=split, audit_split=audit_split or "test", train_split=train_split or None)
        request = {"name": name, "model": model, "dataset": dataset, "system_card": card_path, "policy": policy,
                   "domain": None if domain == none else domain, "checks": checks or None}
        try:
            job = review.start_audit(ctx.engine, ctx.user, request)
        except review.PermissionDenied as e:
            st.error(ctx.t("permission_denied", msg=str(e)))
            return
        except AuditInputError as e:
            st.error(ctx.t("job_failed", error=str(e)))
            return
        st.session_state.setdefault("jobs", []).append(job)
    for job in reversed(st.session_state.get("jobs", [])):
        _job_panel(ctx, job)


def _job_panel(ctx: Ctx, job: str) -> None:
    """A running job refreshes itself every 1.5 s (a fragment); a finished one is drawn once."""
    status = review.job_status(ctx.engine.settings, job)
    if status["state"] != "running":
        _job_box(ctx, job, status)
        return

    @st.fragment(run_every=1.5)
    def live() -> None:
        now = review.job_status(ctx.engine.settings, job)
        if now["state"] != "running":
            st.rerun(scope="app")
        _job_box(ctx, job, now)

    live()


def _job_box(ctx: Ctx, job: str, status: dict[str, Any]) -> None:
    state = status["state"]
    label = (ctx.t("job_running") if state == "running" else
             ctx.t("job_done", audit_id=status.get("audit_id"), status=status.get("status")) if state == "completed"
             else ctx.t("job_failed", error=md(status.get("error", ""))))
    with st.status(label, state={"running": "running", "completed": "complete"}.get(state, "error"),
                   expanded=state != "completed"):
        for line in status["progress"][-30:]:
            st.text(line)
    if state == "completed":
        st.button(ctx.t("open_audit"), key=f"job-open-{job}", on_click=open_audit, args=(status["audit_id"],))


# users --------------------------------------------------------------------------------------
def users_page(ctx: Ctx) -> None:
    st.title(ctx.t("users_title"))
    if not ctx.can("users.manage"):
        st.warning(ctx.t("permission_denied", msg="admin only"))
        return
    from audit.users import UserStore
    users = UserStore(ctx.engine.records).list()
    st.dataframe(pd.DataFrame(users).drop(columns=["locked_until"], errors="ignore"), hide_index=True, key="users_table")
    with st.form("add_user", clear_on_submit=True):
        st.subheader(ctx.t("add_user"))
        username = st.text_input(ctx.t("username"), key="nu_name")
        role = st.selectbox(ctx.t("role"), [r.value for r in Role], key="nu_role",
                            format_func=lambda r: ctx.t(f"role_{r}"))
        oidc = st.checkbox(ctx.t("oidc_account"), key="nu_oidc")
        password = st.text_input(ctx.t("password"), type="password", key="nu_password")
        if st.form_submit_button(ctx.t("add_user"), key="nu_submit"):
            _admin(ctx, "add", username.strip(), role=role, password=None if oidc else password,
                   source="oidc" if oidc else "local", done=ctx.t("user_added", user=username))
    if users:
        st.subheader(ctx.t("action"))
        c1, c2, c3 = st.columns(3)
        who = c1.selectbox(ctx.t("select_user"), [u["username"] for u in users], key="mu_user")
        op = c2.selectbox(ctx.t("action"), ["set_role", "unlock", "remove"], key="mu_op",
                          format_func=lambda o: {"set_role": ctx.t("change_role"), "unlock": ctx.t("unlock"),
                                                 "remove": ctx.t("remove_user")}[o])
        role = c3.selectbox(ctx.t("role"), [r.value for r in Role], key="mu_role",
                            format_func=lambda r: ctx.t(f"role_{r}"), disabled=op != "set_role")
        if st.button(ctx.t("apply"), key="mu_apply"):
            _admin(ctx, op, who, role=role, done=ctx.t("done"))


def _admin(ctx: Ctx, op: str, username: str, done: str, **kw: Any) -> None:
    ok, _ = attempt(ctx, review.manage_users, ctx.engine.records, ctx.user, op, username, **kw)
    if ok:
        flash("success", done)
        st.rerun()
