"""The review app's page logic and role checks, driven through Streamlit's AppTest (real store, real audits)."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import date

import pytest

from conftest import ROOT
from test_review import FAIL_AUC, PASSWORD, add_user, register_model, run_audit
from test_review import review_engine, scorecard  # noqa: F401  (shared session fixtures)

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

MAIN = str(ROOT / "app" / "main.py")


@pytest.fixture(scope="module")
def app_case(review_engine, registry, scorecard, tmp_path_factory):
    ref = register_model(registry, scorecard, "app-scorecard")
    result = run_audit(review_engine, tmp_path_factory.mktemp("app"), ref.uri, FAIL_AUC)
    rec = review_engine.records
    for name, role in [("app-viewer", "viewer"), ("app-rita", "reviewer"), ("app-alex", "approver"), ("app-admin", "admin")]:
        add_user(rec, name, role)
    blocker = next(f for f in result.findings if f.metric == "performance.roc_auc")
    return ref, result, blocker


def new_app() -> AppTest:
    return AppTest.from_file(MAIN, default_timeout=120)


def sign_in(username: str, password: str = PASSWORD, at: AppTest | None = None) -> AppTest:
    at = at or new_app().run()
    at.text_input(key="signin_user").input(username)
    at.text_input(key="signin_password").input(password)
    return at.button(key="signin_submit").click().run()


def open_audit(at: AppTest, audit_id: str) -> AppTest:
    at.session_state["current_audit"] = audit_id
    return at.sidebar.radio(key="page").set_value("audit").run()


def open_tab(at: AppTest, audit_id: str, label: str) -> AppTest:
    at.session_state[f"tabs-{audit_id}"] = label  # the audit view renders only the open tab
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "warning", "success", "error", "subheader")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts).replace("\\", "")  # drop markdown escapes


def button_keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def inventory(at: AppTest):
    return next(d.value for d in at.dataframe if "latest audit" in d.value.columns)


def test_anonymous_visitor_sees_only_the_sign_in_page(app_case):
    _, result, _ = app_case
    at = new_app()
    at.query_params["audit"] = result.audit_id  # a deep link does not get past the sign-in page
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["aiaudit review"]
    assert button_keys(at) == {"signin_submit"}
    assert len(at.sidebar.radio) == 0 and not at.tabs and not at.dataframe
    assert result.audit_id not in texts(at) and "app-scorecard" not in texts(at)


def test_wrong_password_is_refused_and_lockout_is_shown(app_case):
    at = sign_in("app-viewer", "not the password")
    assert [e.value for e in at.error] == ["Wrong username or password."]
    assert len(at.sidebar.radio) == 0
    for _ in range(5):  # MAX_FAILURES
        at = sign_in("app-lockme", "not the password", at)
    assert "Too many failed attempts" in at.error[0].value
    assert len(at.sidebar.radio) == 0


def test_viewer_can_read_but_not_change_anything(app_case, review_engine):
    _, result, blocker = app_case
    at = sign_in("app-viewer")
    assert not at.exception
    assert at.sidebar.radio(key="page").options == ["Inventory", "Audit", "Monitoring", "Incidents"]  # no start-audit, no user admin
    at = open_audit(at, result.audit_id)
    assert not at.exception
    assert "can read this audit but not change it" in texts(at)
    seen: set[str] = set()
    for tab in ("Findings & review", "Compare", "Sign-off", "Export"):
        open_tab(at, result.audit_id, tab)
        assert not at.exception
        seen |= button_keys(at)
        if tab == "Findings & review":
            assert blocker.title in texts(at)  # the finding and its evidence are readable
        if tab == "Sign-off":
            assert "Only an approver or admin can sign off." in texts(at)
    assert not any(k.startswith(("d-save", "so-go", "cmp-carry", "pr-go", "so-revoke", "so-resync")) for k in seen)
    assert f"ex-json-{result.audit_id}" in {b.key for b in at.get("download_button")}
    assert review_engine.records.entries(result.audit_id)[-1].event == "audit.completed"


def test_reviewer_records_a_decision_and_approver_signs_off(app_case, review_engine, registry):
    from audit import review
    ref, result, blocker = app_case
    aid, fid = result.audit_id, blocker.id
    alex = open_tab(open_audit(sign_in("app-alex"), aid), aid, "Sign-off")
    assert alex.button(key=f"so-go-{aid}").disabled  # a high-severity fail has no decision yet
    assert "need a decision before sign-off" in texts(alex)

    rita = sign_in("app-rita")
    rita.selectbox(key="inv_pick").set_value(aid).run()  # a browser reruns on change, binding the button to it
    rita.button(key="inv_open").click().run()  # inventory -> audit view
    assert rita.title[0].value == f"Audit of {ref.uri}"
    open_tab(rita, aid, "Findings & review")
    assert rita.selectbox(key=f"f-pick-{aid}").value == fid  # undecided blockers come first
    rita.radio(key=f"d-kind-{aid}-{fid}-0").set_value("mitigation_planned")
    rita.text_area(key=f"d-rat-{aid}-{fid}-0").input("Retrain on 2025 data")
    rita.button(key=f"d-save-{aid}-{fid}-0").click().run()
    assert "owner and a due date" in rita.error[0].value  # server-side validation, shown in the form
    assert review.current_dispositions(review_engine.records, aid) == {}
    rita.text_input(key=f"d-owner-{aid}-{fid}-0").input("Credit model team")
    rita.date_input(key=f"d-due-{aid}-{fid}-0").set_value(date(2031, 3, 31))
    rita.button(key=f"d-save-{aid}-{fid}-0").click().run()
    assert not rita.exception
    assert any("Decision recorded in the ledger" in s.value for s in rita.success)
    saved = review.current_dispositions(review_engine.records, aid)[fid]
    assert (saved["kind"], saved["owner"], saved["due_date"], saved["actor"]) == \
        ("mitigation_planned", "Credit model team", "2031-03-31", "app:app-rita")
    assert not any(k.startswith("so-go") for k in button_keys(rita))  # reviewers cannot sign off

    alex.run()
    assert not alex.button(key=f"so-go-{aid}").disabled
    alex.text_area(key=f"so-comment-{aid}").input("Approved with the planned retraining.")
    alex.button(key=f"so-go-{aid}").click().run()
    assert not alex.exception
    assert any("Signed off." in s.value for s in alex.success)
    assert review.get_signoff(review_engine.records, aid)["signed_off_by"] == "app-alex"
    assert registry.client.get_model_version(ref.name, ref.version).tags["aiaudit.signed_off_by"] == "app-alex"
    assert "Signed off by app-alex" in texts(alex)
    # decisions are frozen in the UI too
    open_tab(alex, aid, "Findings & review")
    assert "decisions are frozen" in texts(alex)
    assert not any(k.startswith("d-save") for k in button_keys(alex))


def test_inventory_shows_open_findings_and_sign_off_state(app_case):
    ref, result, _ = app_case
    at = sign_in("app-viewer")
    df = inventory(at)
    row = df[(df["model"] == ref.name) & (df["version"] == ref.version)].iloc[0]
    assert row["latest audit"] == result.audit_id
    assert row["open high"] + row["open critical"] <= 1
    at.text_input(key="inv_search").input("no-such-model").run()
    assert inventory(at).empty


def test_korean_interface(app_case):
    at = new_app().run()
    at.selectbox(key="lang").set_value("ko").run()
    assert at.button(key="signin_submit").label == "로그인"
    at = sign_in("app-viewer", at=at)
    assert at.title[0].value == "모델 목록"
    assert at.sidebar.radio(key="page").format_func("audit") == "감사 결과"
    assert at.sidebar.button(key="sign_out").label == "로그아웃"


def test_sessions_time_out_and_removed_users_are_signed_out(app_case, review_engine):
    from audit.users import UserStore
    at = sign_in("app-viewer")
    session = at.session_state["aiaudit_session"]
    at.session_state["aiaudit_session"] = replace(session, last_seen=time.time() - 31 * 60)
    at.run()
    assert [t.value for t in at.title] == ["aiaudit review"] and "timed out" in at.warning[0].value
    add_user(review_engine.records, "app-temp", "reviewer")
    at = sign_in("app-temp")
    assert at.title[0].value == "Model inventory"
    UserStore(review_engine.records).remove("app-temp", actor="test")
    at.run()
    assert [t.value for t in at.title] == ["aiaudit review"]


def test_admin_manages_users_and_others_cannot(app_case, review_engine):
    from audit import review
    from audit.users import User, UserStore
    at = sign_in("app-admin")
    at.sidebar.radio(key="page").set_value("users").run()
    at.text_input(key="nu_name").input("app-new")
    at.selectbox(key="nu_role").set_value("reviewer")
    at.text_input(key="nu_password").input("a long enough password")
    at.button(key="nu_submit").click().run()
    assert not at.exception
    assert UserStore(review_engine.records).get("app-new").role.value == "reviewer"
    with pytest.raises(review.PermissionDenied):
        review.manage_users(review_engine.records, User("app-alex", UserStore(review_engine.records).get("app-alex").role),
                            "remove", "app-new")
    assert UserStore(review_engine.records).get("app-new") is not None


def test_export_from_the_audit_view(app_case, review_engine):
    _, result, _ = app_case
    aid = result.audit_id
    at = open_tab(open_audit(sign_in("app-viewer"), aid), aid, "Export")
    try:
        import audit.documents  # noqa: F401
    except Exception as e:  # the documents worker's module is not importable: the page says so
        assert "Document export is not available" in texts(at), e
        return
    at.selectbox(key=f"ex-doc-{aid}").set_value("model-card")
    at.selectbox(key=f"ex-fmt-{aid}").set_value("md")
    at.button(key=f"ex-go-{aid}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(b.key == f"ex-dl-{aid}" for b in at.get("download_button"))
    assert any(e.event == "document.exported" and e.payload["doc"] == "model-card"
               for e in review_engine.records.entries(aid))


def test_check_details_render_generically(tmp_path):
    """Tables with CIs become error-bar charts, evidence paths become images, escaping paths are ignored."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    (tmp_path / "evidence" / "fairness").mkdir(parents=True)
    plt.plot([0, 1], [0, 1])
    plt.savefig(tmp_path / "evidence" / "fairness" / "gap.png")
    (tmp_path.parent / "secret.png").write_bytes(b"not for you")
    from audit import figures
    figures.save(tmp_path / "evidence" / "fairness" / f"bars{figures.SUFFIX}", "shap.global_bar",
                 table=[{"feature": "duration", "mean_abs": 0.8, "ci_low": 0.7, "ci_high": 0.9}], scale="log-odds")

    def page(audit_dir: str) -> None:
        from pathlib import Path

        from app.render import render_details
        from audit import figures
        render_details({
            "metric": "selection rate", "n_groups": 2,
            "groups": [{"group": "female", "value": 0.61, "ci_low": 0.52, "ci_high": 0.70, "n": 96},
                       {"group": "male", "value": 0.72, "ci_low": 0.66, "ci_high": 0.78, "n": 226}],
            "importance": [{"feature": "duration", "mean_abs_shap": 0.8}, {"feature": "amount", "mean_abs_shap": 0.3}],
            "plot": "evidence/fairness/gap.png", "leak": "evidence/../../secret.png",
            "drawn": f"evidence/fairness/bars{figures.SUFFIX}",
        }, Path(audit_dir), "t", set())

    at = AppTest.from_function(page, args=(str(tmp_path),), default_timeout=60).run()
    assert not at.exception
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2  # CI error bars for the groups, a bar chart for the importances
    assert len(at.image) == 2  # the evidence PNG and the figure drawn from data; the escaping path is not shown
    assert any(list(df.value.columns)[:4] == ["group", "value", "ci_low", "ci_high"] for df in at.dataframe)


def test_markdown_escaping_and_csv_neutralisation():
    import pandas as pd
    from app.render import md, to_csv
    assert md("[click](http://evil)") == r"\[click\]\(http\://evil\)"
    assert md("![x](u) :smile:") == r"\!\[x\]\(u\) \:smile\:"
    import codecs
    import csv
    import io
    data = to_csv(pd.DataFrame({"rationale": ['=HYPERLINK("http://x")', "fine", "-1+2", "@SUM(A1)"],
                                "value": [-1.5, 2, 3, 4]}))
    assert data.startswith(codecs.BOM_UTF8)   # without it Excel decodes the download in the local code page
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["rationale", "value"]
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://x\")", "fine", "'-1+2", "'@SUM(A1)"]
    assert rows[1][1] == "-1.5"  # numbers stay numbers
    korean = to_csv(pd.DataFrame({"근거": ["위험 수용", "=잘못"]}))
    assert pd.read_csv(io.BytesIO(korean)).to_dict("list") == {"근거": ["위험 수용", "'=잘못"]}


def test_reviewer_starts_an_audit_from_the_app_and_sees_its_progress(app_case, review_engine):
    from audit import review
    ref, result, _ = app_case
    at = sign_in("app-rita")
    at.sidebar.radio(key="page").set_value("start").run()
    assert not at.exception
    at.selectbox(key="start_model").set_value(ref.uri).run()
    # the form is prefilled from the model's latest audit
    assert at.selectbox(key=f"start_label-{ref.uri}").value == "good_credit"
    assert at.multiselect(key=f"start_protected-{ref.uri}").value == ["sex", "age_group"]
    assert at.selectbox(key=f"start_split-{ref.uri}").value == "split"
    at.multiselect(key="start_checks").set_value(["performance"])
    at.button(key="start_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    job = at.session_state["jobs"][-1]
    deadline = time.time() + 180
    while review.job_status(review_engine.settings, job)["state"] == "running" and time.time() < deadline:
        time.sleep(1)
    status = review.job_status(review_engine.settings, job)
    assert status["state"] == "completed", status
    at.run()
    assert any(s.label.startswith(f"Audit {status['audit_id']} completed") for s in at.status)
    at.button(key=f"job-open-{job}").click().run()
    assert at.session_state["current_audit"] == status["audit_id"]
    new = review_engine.load_result(status["audit_id"])
    assert new.model.uri == ref.uri and list(new.checks) == ["performance"] and new.dataset.label == "good_credit"
    assert new.actor == "app:app-rita"


def test_oidc_configured_without_authlib_falls_back_to_local_accounts(app_case):
    at = new_app()
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "id", "client_secret": "secret",
                          "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    at.run()
    try:
        import authlib  # noqa: F401
        assert any(b.key == "sso-default" for b in at.button)
    except ImportError:
        assert "Authlib package is not installed" in at.info[0].value
        assert button_keys(at) == {"signin_submit"}


def test_tabs_are_the_checks_that_ran_under_their_catalogue_names(app_case, credit_audit):
    """Skipped checks (the language-model probes on a tabular audit) used to get tabs ("SAE features",
    "Lm Robustness")."""
    from risk.catalogue import check_catalogue
    result = credit_audit
    at = open_audit(sign_in("app-viewer"), result.audit_id)
    labels = [t.label for t in at.tabs]
    ran = [n for n, run in result.checks.items() if run.status != "skipped" and n in check_catalogue().names]
    skipped = [n for n, run in result.checks.items() if run.status == "skipped"]
    assert skipped, "expected the language-model checks to be skipped on a tabular audit"
    for name in ran:
        assert check_catalogue()[name].short.en in labels
    for name in skipped:
        assert check_catalogue()[name].short.en not in labels
    assert not any("Lm " in label for label in labels)


def test_an_audit_link_survives_sign_in(app_case, credit_audit):
    at = new_app()
    at.query_params["audit"] = credit_audit.audit_id
    at = sign_in("app-viewer", at=at.run())
    assert not at.exception
    assert at.sidebar.radio(key="page").value == "audit"
    assert credit_audit.model.uri in " ".join(t.value for t in at.title)


def test_summary_opens_with_the_verdict_and_folds_the_proof_trace(app_case, credit_audit):
    at = open_audit(sign_in("app-viewer"), credit_audit.audit_id)
    assert not at.exception
    assert credit_audit.status == "needs_review"
    assert any("need a recorded decision" in w.value for w in at.warning)
    assert any(e.label.startswith("Proof trace") for e in at.expander)
    attention = next(d.value for d in at.dataframe if "finding" in d.value.columns and "severity" in d.value.columns)
    assert len(attention) == sum(f.status.value != "pass" for f in credit_audit.findings)
    assert list(attention["status"])[:1] != ["pass"]


def test_summary_verdict_follows_decisions_and_sign_off(app_case, review_engine, registry, scorecard, tmp_path):
    """The verdict counts the gate failures still undecided: it used to say "Release is blocked" after every
    failure had a decision, and after sign-off."""
    from audit import review
    from audit.findings import Severity
    from audit.users import UserStore
    ref = register_model(registry, scorecard, "app-verdict")  # its own model: app_case's latest audit stays
    result = run_audit(review_engine, tmp_path, ref.uri, FAIL_AUC)
    aid = result.audit_id
    [failed] = [f for f in result.findings if f.gates(Severity(result.policy.fail_on))]
    at = open_audit(sign_in("app-viewer"), aid)
    assert [e.value for e in at.error] == [("Release is blocked: 1 finding(s) failed a gate. Fix the cause and "
                                            "re-audit, or record a justified disposition for each before sign-off.")]
    store = UserStore(review_engine.records)
    review.record_disposition(review_engine, store.get("app-rita"), aid, failed.id, "accept_risk",
                              "Screening use only: every decline is reviewed by a credit officer.")
    at.run()
    assert not at.exception and not at.error
    assert any("each has a recorded decision" in i.value for i in at.info)
    attention = attention_table(at)
    assert attention.loc[attention["finding"] == failed.title, "decision"].tolist() == ["Accept risk"]
    review.sign_off(review_engine, store.get("app-alex"), aid, "Approved for screening use.")
    at.run()
    assert not at.error and not any("recorded decision" in i.value for i in [*at.info, *at.warning])
    assert any(s.value.replace("\\", "").startswith("Signed off by app-alex") for s in at.success)


def test_audit_view_in_korean_names_tabs_verdict_and_columns_in_korean(app_case, credit_audit):
    from app import i18n
    from risk.catalogue import check_catalogue
    at = new_app().run()
    at.selectbox(key="lang").set_value("ko").run()
    at = open_audit(sign_in("app-viewer", at=at), credit_audit.audit_id)
    assert not at.exception
    labels = [t.label for t in at.tabs]
    ran = [n for n, run in credit_audit.checks.items() if run.status != "skipped"]
    assert labels == (["요약", "발견 사항 및 검토"] + [check_catalogue()[n].short.ko for n in ran]
                      + ["비교", "최종 승인", "내보내기", "이력"])
    blockers = review_blockers(credit_audit)
    assert [w.value for w in at.warning] == [i18n.t("verdict_review", "ko", n=len(blockers))]
    assert list(attention_table(at, "ko").columns) == ["상태", "심각도", "점검 항목", "발견 사항", "그룹", "값", "처리 결정"]
    assert any(e.label.startswith("판단 근거 추적") for e in at.expander)


def attention_table(at: AppTest, lang: str = "en"):
    """The Summary's "needs attention" table (the one with a decision column)."""
    from app import i18n
    return next(d.value for d in at.dataframe if i18n.t("fcol_disposition", lang) in d.value.columns)


def review_blockers(result):
    from audit import review
    return review.signoff_blockers(result, {})
