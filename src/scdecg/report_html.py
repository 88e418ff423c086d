"""The run report as one self-contained HTML file (figures embedded), beside ``report.md``.

Renders the Markdown the report writes -- headings, paragraphs, GitHub tables, images and the
inline marks ``code``, **bold** and _italic_ -- with no dependency and no external reference:
each figure becomes a ``data:`` URI, the style sheet is inline. Any browser opens the file
offline, and it can be mailed or archived on its own.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Iterable

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 62rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #1b1b1b; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; }
figcaption { font-style: italic; color: #555; font-size: .9rem; }
code { background: #f3f3f3; padding: 0 .2rem; border-radius: 3px; }
"""
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
HEADING = re.compile(r"^(?P<level>#{1,6}) (?P<text>.*)$")


def inline(text: str) -> str:
    """Escape ``text`` and render `code`, **bold** and _italic_ / *italic* (not inside code,
    and an ``_`` inside a word such as ``aVL_rs_diff`` stays an underscore)."""
    codes: list[str] = []

    def hold(match: re.Match) -> str:
        codes.append(f"<code>{html.escape(match.group(1))}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = html.escape(re.sub(r"`([^`]*)`", hold, text))
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)
    out = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"<em>\1</em>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


def data_uri(path: Path) -> str:
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _table(rows: list[str]) -> str:
    header, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    head = "".join(f"<th>{inline(c)}</th>" for c in header)
    lines = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>"
                    for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>"


def _image(alt: str, src: str, base: Path) -> str:
    """An image of the report folder ``base``, embedded; a ``src`` outside it (which a text
    value with a line break could name, e.g. from an edited config.json) is never read."""
    path = (base / src).resolve()
    if not path.is_relative_to(Path(base).resolve()):
        return f"<p><em>(figure refused: {html.escape(src)} lies outside the report folder)</em></p>"
    if not path.is_file():
        return f"<p><em>(figure missing: {html.escape(src)})</em></p>"
    return (f'<figure><img src="{data_uri(path)}" alt="{html.escape(alt, quote=True)}">'
            "</figure>")


def markdown_to_html(lines: Iterable[str], base: Path, title: str = "Run report") -> str:
    """The report's Markdown lines as a complete HTML document; images read from ``base``."""
    blocks: list[str] = []
    paragraph: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if paragraph:
            text = " ".join(paragraph)
            caption = re.fullmatch(r"\*(?!\*)(.+)\*", text)
            if caption and blocks and blocks[-1].startswith("<figure>"):
                blocks[-1] = blocks[-1].replace(
                    "</figure>", f"<figcaption>{inline(caption.group(1))}</figcaption></figure>")
            else:
                blocks.append(f"<p>{inline(text)}</p>")
            paragraph.clear()
        if table:
            blocks.append(_table(table) if len(table) >= 2 else f"<p>{inline(table[0])}</p>")
            table.clear()

    for raw in lines:
        for line in str(raw).split("\n"):
            stripped = line.strip()
            if not stripped:
                flush()
                continue
            if stripped.startswith("|"):
                if paragraph:
                    flush()
                table.append(stripped)
                continue
            if table:
                flush()
            heading = HEADING.match(stripped)
            image = IMAGE.match(stripped)
            if heading or image:
                flush()
                if heading:
                    level = len(heading["level"])
                    blocks.append(f"<h{level}>{inline(heading['text'])}</h{level}>")
                else:
                    blocks.append(_image(image["alt"], image["src"], base))
                continue
            paragraph.append(stripped)
    flush()
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(blocks) + "\n</body>\n</html>\n")
