"""Lay a `Document` out as HTML, PDF (WeasyPrint), Markdown or DOCX (python-docx).

User- and data-derived strings reach HTML and PDF only through Jinja2 autoescaping, and
Markdown only through `md_escape` (which also turns < and > into entities, so raw HTML in a
model or column name stays text).  The manifest is embedded as inert JSON in every format.
"""
from __future__ import annotations

import base64
import io
import re
from functools import lru_cache
from typing import Any

import jinja2

from . import manifest as M
from .model import Bullets, Document, Figure, KeyValues, Note, Paragraph, Section, Table
from .text import TEMPLATES

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def md_escape(value: Any) -> str:
    """Plain text -> inert inline Markdown: no raw HTML, emphasis, links, code or table breaks."""
    text = _CONTROL.sub("", str(value)).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)


def md_block(value: Any) -> str:
    """Like `md_escape`, for text that starts a line: list, heading and quote markers stay text."""
    text = md_escape(value)
    text = re.sub(r"^(\s*\d+)([.)])", r"\1\\\2", text)
    return re.sub(r"^(\s*)([#+=-])", r"\1\\\2", text)


def _code(value: Any) -> str:
    return str(value).replace("`", "'").replace("\n", " ")


@lru_cache(maxsize=2)
def layout_env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / "layout")), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, trim_blocks=False, lstrip_blocks=False)
    env.filters["kind"] = lambda b: type(b).__name__
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    env.filters["md"] = md_escape
    env.filters["mdblock"] = md_block
    env.filters["code"] = _code
    env.tests["section"] = lambda b: isinstance(b, Section)
    return env


def html(doc: Document, for_print: bool = False) -> str:
    css = (TEMPLATES / "layout" / "document.css").read_text(encoding="utf-8")
    return layout_env(True).get_template("document.html.j2").render(
        doc=doc, css=css, for_print=for_print, manifest_json=M.embeddable(doc.manifest))


def markdown(doc: Document) -> str:
    text = layout_env(False).get_template("document.md.j2").render(doc=doc, manifest_json=M.embeddable(doc.manifest))
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).lstrip() + ("" if text.endswith("\n") else "\n")


def pdf(doc: Document) -> bytes:
    from weasyprint import HTML, Attachment
    attachment = Attachment(string=M.canonical(doc.manifest), name=M.ATTACHMENT_NAME,
                            description="aiaudit evidence manifest (JSON)")
    return HTML(string=html(doc, for_print=True), base_url=str(TEMPLATES)).write_pdf(
        attachments=[attachment], pdf_tags=True)


# DOCX -------------------------------------------------------------------------------------------
def _xml_safe(value: Any) -> str:
    return _CONTROL.sub("", str(value))


def _set_east_asian_font(style_or_run: Any, name: str) -> None:
    from docx.oxml.ns import qn
    rpr = style_or_run.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), name)


def _shade(cell: Any, fill: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shd)


def _repeat_header(row: Any) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    trpr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    trpr.append(el)


def _page_field(paragraph: Any, instr: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    fld = OxmlElement("w:fldSimple")
    fld.set(qn("w:instr"), instr)
    run = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = "1"
    run.append(t)
    fld.append(run)
    paragraph._p.append(fld)


def docx(doc: Document) -> bytes:
    from docx import Document as Docx
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt, RGBColor

    d = Docx()
    sec = d.sections[0]
    sec.page_width, sec.page_height = Cm(21.0), Cm(29.7)
    sec.left_margin = sec.right_margin = Cm(1.8)
    sec.top_margin = sec.bottom_margin = Cm(1.8)
    latin, east = "Calibri", "Malgun Gothic" if doc.lang == "ko" else "Calibri"
    for name in ("Normal", "Title", "Subtitle", "Heading 1", "Heading 2", "Heading 3", "Caption", "List Bullet"):
        try:
            style = d.styles[name]
        except KeyError:
            continue
        style.font.name = latin
        _set_east_asian_font(style, east)
    d.styles["Normal"].font.size = Pt(9.5)
    accent = RGBColor(0x0B, 0x4F, 0x8A)

    header = sec.header.paragraphs[0]
    header.text = _xml_safe(f"{doc.title} · {doc.subject_id}")
    header.runs[0].font.size = Pt(7.5)
    footer = sec.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    _page_field(footer, "PAGE")

    p = d.add_paragraph()
    run = p.add_run(_xml_safe(doc.labels["draft_banner"]))
    run.font.size, run.font.color.rgb = Pt(8), RGBColor(0x57, 0x60, 0x6A)
    d.add_heading(_xml_safe(doc.title), level=0)
    d.add_paragraph(_xml_safe(doc.subtitle), style="Subtitle")
    _kv_table(d, doc.cover, Pt)

    def block(b: Any) -> None:
        if isinstance(b, Paragraph):
            para = d.add_paragraph()
            r = para.add_run(_xml_safe(b.text))
            if b.style == "label":
                r.bold = True
            elif b.style == "small":
                r.font.size = Pt(8)
        elif isinstance(b, Bullets):
            for item in b.items:
                d.add_paragraph(_xml_safe(item), style="List Bullet")
        elif isinstance(b, KeyValues):
            _kv_table(d, b.rows, Pt)
        elif isinstance(b, Table):
            if b.caption:
                cap = d.add_paragraph()
                cr = cap.add_run(_xml_safe(b.caption))
                cr.bold, cr.font.size = True, Pt(8.5)
                cap.paragraph_format.keep_with_next = True
            table = d.add_table(rows=1, cols=len(b.columns))
            table.style = "Table Grid"
            table.alignment = WD_TABLE_ALIGNMENT.CENTER
            size = Pt(7) if len(b.columns) > 6 else Pt(8)
            for j, c in enumerate(b.columns):
                cell = table.rows[0].cells[j]
                cell.text = ""
                r = cell.paragraphs[0].add_run(_xml_safe(c))
                r.bold, r.font.size = True, size
                _shade(cell, "EEF2F6")
            _repeat_header(table.rows[0])
            for row in b.rows:
                cells = table.add_row().cells
                for j, v in enumerate(row):
                    para = cells[j].paragraphs[0]
                    r = para.add_run(_xml_safe(v))
                    r.font.size = size
                    if b.numeric[j]:
                        para.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            d.add_paragraph()
        elif isinstance(b, Figure):
            d.add_picture(io.BytesIO(b.png), width=Cm(15.5))
            d.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
            cap = d.add_paragraph(_xml_safe(b.caption + (f" ({b.source})" if b.source else "")), style="Caption")
            cap.alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif isinstance(b, Note):
            table = d.add_table(rows=1, cols=1)
            cell = table.rows[0].cells[0]
            _shade(cell, {"open": "FFF6EC", "warning": "FDF1F1"}.get(b.kind, "F3F7FB"))
            para = cell.paragraphs[0]
            if b.kind == "open":
                tag = para.add_run(_xml_safe(doc.labels["open_tag"]) + " ")
                tag.bold, tag.font.color.rgb = True, RGBColor(0xB3, 0x5C, 0x00)
            para.add_run(_xml_safe(b.text)).font.size = Pt(9)
            d.add_paragraph()

    def badge(status: str | None) -> str:
        return f"  [{doc.labels['badge_' + status]}]" if status else ""

    d.add_heading(_xml_safe(doc.labels["contents"]), level=1)
    for s in doc.sections:
        d.add_paragraph(_xml_safe(s.title), style="List Number")
    for s in doc.sections:
        h = d.add_heading(_xml_safe(s.title + badge(s.status)), level=1)
        h.runs[0].font.color.rgb = accent
        for b in s.blocks:
            if isinstance(b, Section):
                d.add_heading(_xml_safe(b.title + badge(b.status)), level=2)
                for bb in b.blocks:
                    block(bb)
            else:
                block(b)
    d.add_paragraph(_xml_safe(doc.labels["footer_verify"]) + " aiaudit verify FILE").runs[0].font.size = Pt(8)

    props = d.core_properties
    props.title = _xml_safe(f"{doc.title} · {doc.subtitle}")[:250]
    props.subject = doc.kind
    props.author = "aiaudit"
    props.keywords = f"{doc.kind}, {doc.subject_id}"
    props.identifier = doc.subject_id
    props.language = doc.lang
    props.comments = f"aiaudit evidence manifest SHA-256 {M.digest(doc.manifest)}"
    _add_custom_property(d, M.MANIFEST_ID, M.canonical(doc.manifest))
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _add_custom_property(d: Any, name: str, value: str) -> None:
    """docProps/custom.xml with one string property (python-docx has no API for custom properties)."""
    from xml.sax.saxutils import escape, quoteattr
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           f'<Properties xmlns="{M.DOCX_CUSTOM_NS}" xmlns:vt="{M.DOCX_VT_NS}">'
           f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="2" name={quoteattr(name)}>'
           f"<vt:lpwstr>{escape(_xml_safe(value))}</vt:lpwstr></property></Properties>")
    package = d.part.package
    part = Part(PackURI(M.DOCX_CUSTOM_PART), "application/vnd.openxmlformats-officedocument.custom-properties+xml",
                xml.encode("utf-8"), package)
    package.relate_to(part, RT.CUSTOM_PROPERTIES)


def _kv_table(d: Any, rows: list[tuple[str, str]], Pt: Any) -> None:
    table = d.add_table(rows=0, cols=2)
    for k, v in rows:
        cells = table.add_row().cells
        kr = cells[0].paragraphs[0].add_run(_xml_safe(k))
        kr.bold, kr.font.size = True, Pt(8.5)
        cells[1].paragraphs[0].add_run(_xml_safe(v)).font.size = Pt(8.5)
    d.add_paragraph()


def render(doc: Document, fmt: str) -> bytes:
    if fmt == "html":
        return html(doc).encode("utf-8")
    if fmt == "md":
        return markdown(doc).encode("utf-8")
    if fmt == "pdf":
        return pdf(doc)
    if fmt == "docx":
        return docx(doc)
    raise ValueError(f"unknown format {fmt!r}")
