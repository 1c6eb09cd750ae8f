"""Regulatory documents (Annex IV, FRIA, model card) drafted from a real audit, in four formats and
two languages, and their evidence manifests checked by `aiaudit verify`."""
from __future__ import annotations

import csv
import hashlib
import html as html_lib
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sklearn import metrics as skm

from conftest import ROOT, run_cli

DOCS = ("annex-iv", "fria", "model-card")
FORMATS = ("pdf", "docx", "html", "md")
LANGS = ("en", "ko")
INJECT_SCRIPT = '<script>alert("model")</script>'
INJECT_IMG = "<img src=x onerror=alert(1)>"
INJECT_FORMULA = '=HYPERLINK("http://evil.example","click")'
INJECT_MD = "[click](javascript:alert(2)) **bold** | pipe"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def document_text(path: Path, needles: tuple[str, ...] = ()) -> str:
    """The reader-visible text of a document in any of the four formats.  For PDFs (pypdf),
    extraction stops at the first page by which every needle has been seen."""
    if path.suffix == ".pdf":
        from pypdf import PdfReader
        text = ""
        for page in PdfReader(str(path)).pages:
            text += (page.extract_text() or "") + "\n"
            if needles and all(n in text for n in needles):
                break
        return text
    if path.suffix == ".docx":
        from docx import Document
        d = Document(str(path))
        cells = [c.text for t in d.tables for row in t.rows for c in row.cells]
        return "\n".join([p.text for p in d.paragraphs] + cells)
    if path.suffix == ".html":
        import lxml.html
        tree = lxml.html.fromstring(path.read_bytes())
        for s in tree.xpath("//script|//style"):
            s.drop_tree()
        return tree.text_content()
    text = path.read_text(encoding="utf-8")
    text = text[: text.index("```json aiaudit-manifest")]
    return html_lib.unescape(re.sub(r"\\(.)", r"\1", text))


def fmt4(v: float) -> str:
    return f"{v:.4f}"


def clone_audit(engine, audit_id: str, mutate=None) -> str:
    """A copy of a stored audit under a new id (so tests can alter it without touching the original)."""
    from audit.model_io import sha256_file
    row = engine.records.get_audit(audit_id)
    new_id = f"{audit_id}-t{uuid.uuid4().hex[:6]}"
    dst = engine.settings.audits_dir / new_id
    shutil.copytree(row["path"], dst)
    data = json.loads((dst / "audit.json").read_text())
    data["audit_id"] = new_id
    if mutate:
        mutate(data, dst)
    (dst / "audit.json").write_text(json.dumps(data, indent=2))
    with engine.records.transaction() as con:
        engine.records.add_audit(con, {**row, "audit_id": new_id, "audit_sha256": sha256_file(dst / "audit.json"),
                                       "path": str(dst)})
    return new_id


@pytest.fixture(scope="module")
def exported(engine, credit_audit, tmp_path_factory) -> dict[tuple[str, str, str], Path]:
    """All three documents in all four formats and both languages for the demo credit audit."""
    from audit.documents import render_documents
    out = tmp_path_factory.mktemp("documents")
    paths = render_documents(engine, credit_audit.audit_id, list(DOCS), list(FORMATS), list(LANGS), out)
    found = {}
    for p in paths:
        _, doc, rest = p.name.split("_")
        lang, ext = rest.split(".")
        found[(doc, lang, ext)] = p
    return found


def test_an_export_run_draws_each_figure_once(engine, credit_audit, tmp_path, monkeypatch):
    from audit import figures
    from audit.documents import render_documents, sources
    drawn: list[int] = []
    monkeypatch.setattr(sources, "draw_figure", lambda spec: drawn.append(1) or figures.draw(spec))
    paths = render_documents(engine, credit_audit.audit_id, ["annex-iv", "model-card"], ["html", "docx"],
                             ["en", "ko"], tmp_path)
    assert len(paths) == 8
    n_figures = sum(1 for rel in credit_audit.evidence if figures.is_figure(rel))
    assert 0 < len(drawn) <= n_figures  # eight documents, each figure drawn at most once
    html = next(p for p in paths if p.suffix == ".html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html


@pytest.fixture(scope="module")
def reference_metrics(engine, credit_audit) -> dict[str, float]:
    """Headline figures recomputed with scikit-learn from the registered model and the audit rows."""
    prepared = engine.prepare(ROOT / "examples" / "credit" / "audit.yaml")
    frame = prepared.data.frame
    y = (frame["good_credit"] == 1).astype(int).to_numpy()
    score = prepared.model.predict_proba(frame)[:, 1]
    return {"roc_auc": skm.roc_auc_score(y, score), "accuracy": skm.accuracy_score(y, score >= 0.5),
            "frame": frame}


def test_every_document_renders_with_the_real_figures(exported, credit_audit, reference_metrics):
    assert len(exported) == len(DOCS) * len(FORMATS) * len(LANGS)
    roc, acc = fmt4(reference_metrics["roc_auc"]), fmt4(reference_metrics["accuracy"])
    assert fmt4(credit_audit.metrics["performance.roc_auc"]) == roc
    for (doc, lang, ext), path in exported.items():
        title = {("annex-iv", "en"): "Technical documentation", ("annex-iv", "ko"): "기술 문서",
                 ("fria", "en"): "Fundamental-rights impact assessment", ("fria", "ko"): "기본권 영향평가",
                 ("model-card", "en"): "Model card", ("model-card", "ko"): "모델 카드"}[(doc, lang)]
        needles = (credit_audit.audit_id, title, roc, acc)
        text = document_text(path, needles)
        for needle in needles:
            assert needle in text, (doc, lang, ext, needle)


def test_model_card_summarises_further_analyses_in_tables_and_annex_iv_has_their_figures(exported, credit_audit):
    plots = [credit_audit.checks[c].details["evidence"]["plot"] for c in ("slices", "robustness")]
    assert all(plots), "the credit audit draws both figures"
    card = exported[("model-card", "en", "html")].read_text(encoding="utf-8")
    annex = exported[("annex-iv", "en", "html")].read_text(encoding="utf-8")
    for rel in plots:
        assert f"({rel})" in annex and f"({rel})" not in card
    assert "their figures are in the Annex IV technical documentation" in card
    assert "부속서 IV" in exported[("model-card", "ko", "html")].read_text(encoding="utf-8")


def test_pdf_pages_are_rasterised_non_blank_and_korean_uses_a_cjk_font(exported, tmp_path):
    from PIL import Image
    from pypdf import PdfReader
    for (doc, lang, ext), path in exported.items():
        if ext != "pdf":
            continue
        n_pages = len(PdfReader(str(path)).pages)
        prefix = tmp_path / f"{doc}-{lang}"
        subprocess.run(["pdftoppm", "-r", "30", "-png", str(path), str(prefix)], check=True, timeout=300)
        pages = sorted(tmp_path.glob(f"{doc}-{lang}-*.png"))
        assert len(pages) == n_pages > 1
        for page in pages:
            grey = Image.open(page).convert("L")
            body = grey.crop((0, int(grey.height * 0.055), grey.width, int(grey.height * 0.945)))  # inside the page margins
            dark = sum(body.histogram()[:160])
            assert dark / (body.width * body.height) > 0.0002, f"{page.name} has no content"
        fonts = {str(f.get_object().get("/BaseFont")) for p in PdfReader(str(path)).pages
                 for f in (p.get("/Resources", {}).get("/Font") or {}).values()}
        if lang == "ko":
            assert any("CJK" in f for f in fonts), fonts
            first_page = PdfReader(str(path)).pages[0].extract_text()
            assert re.search(r"[\uac00-\ud7a3]{4,}", first_page), first_page[:200]


def test_docx_holds_the_group_table_with_the_audited_counts(exported, reference_metrics):
    from docx import Document
    frame = reference_metrics["frame"]
    counts = frame["sex"].value_counts()
    for lang in LANGS:
        d = Document(str(exported[("model-card", lang, "docx")]))
        group_tables = [t for t in d.tables if {"female", "male"} <= {c.text.split(" (")[0] for c in t.columns[0].cells}]
        assert group_tables, f"no sex group table in the {lang} model card"
        table = group_tables[0]
        rows = {r.cells[0].text.split(" (")[0]: r.cells[1].text for r in table.rows[1:]}
        assert rows["female"] == str(counts["female"]) and rows["male"] == str(counts["male"])
        header = table.rows[0]._tr.trPr
        assert header is not None and header.xpath("./w:tblHeader"), "group table header does not repeat on new pages"


def test_manifest_is_embedded_in_every_format_and_matches_the_store(exported, engine, credit_audit):
    from audit.documents.manifest import extract
    audit_dir = Path(engine.records.get_audit(credit_audit.audit_id)["path"])
    for (doc, lang, ext), path in exported.items():
        fmt, man = extract(path)
        assert fmt == ext
        assert man["document"] == {**man["document"], "kind": doc, "format": ext, "lang": lang}
        assert man["audit"]["id"] == credit_audit.audit_id
        assert man["audit"]["audit_json_sha256"] == sha256(audit_dir / "audit.json")
        assert man["evidence"] == credit_audit.evidence and man["evidence"]
        for rel, digest in man["evidence"].items():
            assert sha256(audit_dir / rel) == digest
        assert man["model"]["uri"] == credit_audit.model.uri and man["model"]["sha256"] == credit_audit.model.sha256
        assert man["dataset"]["sha256"] == sha256(Path(credit_audit.dataset.path))
        assert man["policy"]["checksum"] == credit_audit.policy.checksum
        assert man["versions"]["scikit-learn"] == credit_audit.environment["scikit-learn"]
        if credit_audit.risk:
            assert man["system_card"]["sha256"] == sha256(Path(man["system_card"]["path"]))


def test_verify_accepts_every_untouched_export_and_the_ledger_records_it(exported, engine, credit_audit):
    from audit.documents import verify_document
    logged = {e.payload["sha256"] for e in engine.records.entries(credit_audit.audit_id) if e.event == "document.exported"}
    for key, path in exported.items():
        assert sha256(path) in logged, key
        report = verify_document(path, engine)
        assert report.ok, (key, [i.__dict__ for i in report.mismatches])
        names = {i.name for i in report.items if i.ok}
        assert {"document", "audit.json", "evidence", "model", "dataset", "policy", "versions", "ledger"} <= names


def test_verify_rejects_an_edited_copy_in_every_format(exported, engine, credit_audit, tmp_path):
    from docx import Document
    from audit.documents import verify_document
    roc = fmt4(credit_audit.metrics["performance.roc_auc"])
    fake = fmt4(min(credit_audit.metrics["performance.roc_auc"] + 0.05, 0.9999))
    for ext in ("html", "md"):
        src = exported[("model-card", "en", ext)]
        copy = tmp_path / f"edited.{ext}"
        text = src.read_text(encoding="utf-8")
        assert roc in text
        copy.write_text(text.replace(roc, fake), encoding="utf-8")
        report = verify_document(copy, engine)
        assert not report.ok and [i.name for i in report.mismatches] == ["document"]
    d = Document(str(exported[("model-card", "en", "docx")]))
    cell = next(c for t in d.tables for r in t.rows for c in r.cells if c.text == roc)
    cell.paragraphs[0].runs[0].text = fake
    d.save(str(tmp_path / "edited.docx"))
    report = verify_document(tmp_path / "edited.docx", engine)
    assert report.audit_id == credit_audit.audit_id and [i.name for i in report.mismatches] == ["document"]
    pdf = tmp_path / "edited.pdf"
    pdf.write_bytes(exported[("model-card", "en", "pdf")].read_bytes() + b"\n% appended\n")
    assert [i.name for i in verify_document(pdf, engine).mismatches] == ["document"]
    stripped = tmp_path / "stripped.html"
    stripped.write_text(re.sub(r'<script type="application/json" id="aiaudit-manifest">.*?</script>', "",
                               exported[("fria", "en", "html")].read_text(encoding="utf-8"), flags=re.S))
    report = verify_document(stripped, engine)
    assert not report.ok and report.mismatches[0].name == "manifest"


def test_verify_rejects_documents_whose_evidence_or_audit_changed(engine, credit_audit, tmp_path):
    from audit.documents import render_document, verify_document
    from audit.errors import IntegrityError
    assert credit_audit.evidence, "the credit audit should produce evidence files"
    audit_id = clone_audit(engine, credit_audit.audit_id)
    docs = {ext: render_document(engine, audit_id, "fria", ext, "en", tmp_path / f"fria.{ext}") for ext in FORMATS}
    assert all(verify_document(p, engine).ok for p in docs.values())
    audit_dir = engine.settings.audits_dir / audit_id
    evidence = audit_dir / sorted(credit_audit.evidence)[0]
    original = evidence.read_bytes()
    evidence.write_bytes(original + b"tampered")
    for ext, path in docs.items():
        bad = verify_document(path, engine)
        assert [i.name for i in bad.mismatches] == ["evidence"], ext
        assert sorted(credit_audit.evidence)[0] in bad.mismatches[0].detail
    proc = run_cli("verify", str(docs["pdf"]))
    assert proc.returncode == 1 and "FAIL evidence" in proc.stdout
    with pytest.raises(IntegrityError):
        render_document(engine, audit_id, "model-card", "md", "en", tmp_path / "refused.md")
    evidence.write_bytes(original)
    assert verify_document(docs["docx"], engine).ok
    audit_json = audit_dir / "audit.json"
    audit_json.write_text(audit_json.read_text().replace('"status": "', '"status":  "', 1))
    for ext, path in docs.items():
        assert [i.name for i in verify_document(path, engine).mismatches] == ["audit.json"], ext


def _inject(data: dict, audit_dir: Path) -> None:
    data["name"] = INJECT_SCRIPT
    data["model"]["name"] = INJECT_SCRIPT
    data["model"]["uri"] = f"models:/{INJECT_SCRIPT}/1"
    data["dataset"]["protected"] = [INJECT_IMG, "sex"]
    details = data["checks"]["fairness"]["details"]
    analysis = details["analyses"][0]
    analysis["attribute"] = INJECT_IMG
    template = analysis["groups"][0]
    analysis["groups"] = [{**template, "group": label, "reference": False}
                          for label in [INJECT_IMG, INJECT_FORMULA, INJECT_MD] + [f"group {i:03d}" for i in range(160)]]
    finding = next(f for f in data["findings"] if f["check"] == "fairness" and f["status"] != "pass")
    finding.update(group=INJECT_IMG, title=INJECT_FORMULA, detail=INJECT_MD)


@pytest.fixture(scope="module")
def injected(engine, credit_audit, tmp_path_factory) -> tuple[str, dict[str, Path]]:
    """A copy of the credit audit whose names and labels carry markup, formulas and 163 groups."""
    from audit.documents import render_document
    audit_id = clone_audit(engine, credit_audit.audit_id, _inject)
    out_dir = tmp_path_factory.mktemp("injected")
    return audit_id, {ext: render_document(engine, audit_id, "fria", ext, "en", out_dir / f"fria.{ext}") for ext in FORMATS}


def test_injection_strings_render_inert(engine, injected, tmp_path):
    import lxml.html
    import markdown
    from docx import Document
    from audit.documents.manifest import extract
    from audit.documents.tables import write_tables
    audit_id, out = injected

    def assert_inert(tree) -> None:
        scripts = tree.xpath("//script")
        assert all(s.get("type") == "application/json" and s.get("id") == "aiaudit-manifest" for s in scripts)
        assert not [el for el in tree.iter() if isinstance(el.tag, str) and any(a.startswith("on") for a in el.attrib)]
        assert all(img.get("src", "").startswith("data:image/png;base64,") for img in tree.xpath("//img"))
        assert not [a for a in tree.xpath("//a") if a.get("href", "").lower().startswith("javascript")]
        text = tree.text_content()
        assert INJECT_IMG in text and INJECT_SCRIPT in text

    assert_inert(lxml.html.fromstring(out["html"].read_bytes()))
    assert INJECT_SCRIPT not in out["html"].read_text(encoding="utf-8")
    assert extract(out["html"])[1]["model"]["name"] == INJECT_SCRIPT
    md = out["md"].read_text(encoding="utf-8")
    assert extract(out["md"])[1]["model"]["name"] == INJECT_SCRIPT
    rendered = markdown.markdown(md[: md.index("```json aiaudit-manifest")], extensions=["tables"])
    assert_inert(lxml.html.fromstring(f"<div>{rendered}</div>"))
    assert "<strong>bold</strong>" not in rendered
    cells = {c.text for t in Document(str(out["docx"])).tables for r in t.rows for c in r.cells}
    assert INJECT_IMG in cells and INJECT_FORMULA in cells
    pdf_bytes = out["pdf"].read_bytes()
    assert b"/JavaScript" not in pdf_bytes and b"/JS " not in pdf_bytes
    assert "onerror=alert(1)" in document_text(out["pdf"], ("onerror=alert(1)",))
    paths = write_tables(engine, audit_id, "fria", "en", tmp_path / "csv")
    values = [v for p in paths for row in csv.reader(p.open(encoding="utf-8-sig")) for v in row]
    assert "'" + INJECT_FORMULA in values
    assert not [v for v in values if v[:1] in ("=", "+", "@") or (v[:1] == "-" and not re.fullmatch(r"-[\d.,e+-]+", v))]


def test_long_group_table_paginates_with_repeated_header(injected):
    from docx import Document
    from pypdf import PdfReader
    _, out = injected
    pages = [p.extract_text() or "" for p in PdfReader(str(out["pdf"])).pages]
    with_rows = [i for i, text in enumerate(pages) if re.search(r"group \d{3}", text)]
    assert len(with_rows) >= 3, "163 group rows should span several pages"
    assert all("Selection rate" in pages[i] for i in with_rows), "the header row is repeated on every page"
    long_table = max(Document(str(out["docx"])).tables, key=lambda t: len(t.rows))
    assert len(long_table.rows) > 160 and long_table.rows[0]._tr.trPr.xpath("./w:tblHeader")


def test_absent_checks_are_reported_as_not_assessed(engine, credit_audit, tmp_path):
    from audit.documents import render_document
    from risk.catalogue import check_catalogue

    def drop(data: dict, _dir: Path) -> None:
        for name in ("fairness", "explanations"):
            data["checks"].pop(name, None)
        data["findings"] = [f for f in data["findings"] if f["check"] not in ("fairness", "explanations")]
        data["risk"] = None
    audit_id = clone_audit(engine, credit_audit.audit_id, drop)
    for lang, phrase in (("en", "not assessed in this audit"), ("ko", "이번 감사에서 평가되지 않음")):
        text = document_text(render_document(engine, audit_id, "model-card", "md", lang, tmp_path / f"mc-{lang}.md"))
        assert f"{check_catalogue().title('fairness', lang)}: {phrase}" in text
        fria = document_text(render_document(engine, audit_id, "fria", "md", lang, tmp_path / f"fria-{lang}.md"))
        assert phrase in fria


def test_signoff_parameter_is_embedded_and_checked_against_the_records(engine, credit_audit, tmp_path):
    from audit.documents import SignOff, render_document, verify_document
    from audit.documents.manifest import extract
    signoff = SignOff(who="Kim Ji-won", when="2026-11-20T10:00:00Z", role="Head of model risk")
    out = render_document(engine, credit_audit.audit_id, "annex-iv", "md", "en", tmp_path / "signed.md", signoff=signoff)
    assert extract(out)[1]["signoff"] == {"who": "Kim Ji-won", "when": "2026-11-20T10:00:00Z", "role": "Head of model risk"}
    text = document_text(out)
    assert "Kim Ji-won (Head of model risk), 2026-11-20T10:00:00Z" in text and "not yet signed off" not in text
    item = next(i for i in verify_document(out, engine).items if i.name == "sign-off")
    try:
        from audit.review import get_signoff
        stored = get_signoff(engine.records, credit_audit.audit_id)
    except ImportError:
        stored = None
        assert item.ok is None
    if stored is None:
        assert item.ok in (None, False)
    review_shape = {"signed_off_by": "lee", "signed_off_at": "2026-11-21T09:00:00Z", "role": "reviewer",
                    "comment": "ok", "audit_sha256": "a" * 64, "ledger_seq": 7, "entry_hash": "b" * 64}
    coerced = SignOff.coerce(review_shape)
    assert (coerced.who, coerced.when, coerced.role, coerced.ledger_seq) == ("lee", "2026-11-21T09:00:00Z", "reviewer", 7)


def test_cli_export_and_verify(engine, credit_audit, tmp_path):
    out = tmp_path / "card_ko.md"
    proc = run_cli("export", credit_audit.audit_id, "--doc", "model-card", "--format", "md", "--lang", "ko", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "모델 카드" in out.read_text(encoding="utf-8")
    proc = run_cli("verify", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"verified: {out}" in proc.stdout
    out.write_text(out.read_text(encoding="utf-8").replace("모델 카드", "모델  카드", 1), encoding="utf-8")
    assert run_cli("verify", str(out)).returncode == 1
    from typer.testing import CliRunner
    from audit.cli import app
    from audit.commands import register_all
    from audit.errors import AuditInputError
    register_all(app)
    runner = CliRunner()
    for cmd in ("export", "verify"):
        shown = runner.invoke(app, [cmd, "--help"])
        assert shown.exit_code == 0 and "Usage" in shown.output
    bad = runner.invoke(app, ["export", credit_audit.audit_id, "--doc", "dpia", "--out", str(tmp_path / "x.pdf")])
    assert isinstance(bad.exception, AuditInputError) and "--doc" in str(bad.exception)


def test_csv_tables_open_in_excel_with_korean_text(engine, credit_audit, tmp_path):
    """Excel reads a CSV without a byte-order mark in the local code page (Korean text garbles)."""
    import codecs

    import pandas as pd
    from audit.csvsafe import write_csv
    from audit.documents.tables import write_tables
    path = write_csv(tmp_path / "ko.csv", [{"집단": "여성", "비율": 0.25, "비고": "=1+1"}])
    assert path.read_bytes().startswith(codecs.BOM_UTF8 + "집단".encode())
    with path.open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.DictReader(f)) == [{"집단": "여성", "비율": "0.25", "비고": "'=1+1"}]
    assert pd.read_csv(path).to_dict("records") == [{"집단": "여성", "비율": 0.25, "비고": "'=1+1"}]
    paths = write_tables(engine, credit_audit.audit_id, "model-card", "ko", tmp_path / "tables")
    assert paths and all(p.read_bytes().startswith(codecs.BOM_UTF8) for p in paths)
    headers = [next(csv.reader(p.open(encoding="utf-8-sig", newline=""))) for p in paths]
    assert not any(h[0].startswith("\ufeff") for h in headers)
    assert any(re.search(r"[\uac00-\ud7a3]", cell) for h in headers for cell in h)


def test_catalogs_are_complete_in_both_languages():
    from audit.documents.text import CATALOGS, Text, catalog_names
    for catalog in CATALOGS:
        assert catalog_names("en", catalog) == catalog_names("ko", catalog), catalog
    en, ko = Text("en"), Text("ko")
    for attr in ("labels", "terms", "columns"):
        assert set(getattr(en, attr)) == set(getattr(ko, attr)), attr
    hangul = re.compile(r"[\uac00-\ud7a3]")
    untranslated = [k for k, v in ko.labels.items() if re.search(r"[a-z]{3,}", v) and not hangul.search(v)]
    assert not untranslated, untranslated
    import yaml
    obligations = yaml.safe_load((ROOT / "policies" / "eu-ai-act-2024" / "obligations.yaml").read_text())
    ids = {o["id"] for o in obligations["obligations"]}
    assert ids <= set(ko.obligations), ids - set(ko.obligations)
    source = "\n".join(p.read_text() for p in (ROOT / "audit" / "documents").glob("*.py"))
    used = set(re.findall(r"t\.l\([\"']([a-z_0-9]+)[\"']\)", source))
    assert used and used <= set(en.labels), used - set(en.labels)
    for catalog, macro in re.findall(r"t\(\"(common|checks)\", \"([a-z_0-9]+)\"", source):
        assert macro in catalog_names("en", catalog), (catalog, macro)


def test_check_summaries_tell_failures_from_warnings():
    """Korean documents said "24건이 통과하지 못했습니다" ("24 did not pass") for findings that were only warnings."""
    from audit.documents.text import Text
    en, ko = Text("en"), Text("ko")
    assert "2 failed, 22 with a warning" in en("common", "check_summary", check="X", n=30, bad=24, failed=2, warned=22)
    text = ko("common", "check_summary", check="X", n=30, bad=24, failed=2, warned=22)
    assert "실패 2건" in text and "경고 22건" in text and "통과하지 못했습니다" not in text
    assert "failed" not in en("common", "check_summary", check="X", n=5, bad=5, warned=5)
