"""Fail the build on a list marker that starts a line inside a `$...$` or `$$...$$` span.

Markdown reads a line that begins with `- `, `* `, `+ ` or `1. ` as a new list item even in
the middle of a formula, which cuts the formula in two: the reader sees a stray bullet, and the
rest of the paragraph renders as run-together italic maths (issue 9, defect 5). Sphinx warns
once per offending line, and the build's `--warningiserror` turns the warning into a failure.
"""
import json
import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])(?:\s|$)")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
# Inline code may hold a literal dollar; an escaped dollar is not a delimiter.
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
DOLLARS = re.compile(r"\\\$|\${1,2}")


def list_items_in_math(text):
    """Line numbers (1-based) of `text` that start a list item inside an open `$` or `$$` span.

    Fenced code (```` ``` ````, ``~~~``, so also code cells) and inline code are skipped. An
    inline `$` or `$$` span ends with its paragraph (a blank line). A `$$` that opens a line
    starts a display block instead: Markdown reads its lines as maths up to the closing `$$`, so
    a leading `+` there is safe (ch. 9 continues a sum that way) and is not reported.
    """
    found = []
    fence = None            # the opening fence while inside fenced code
    inline = False          # inside $...$
    display = None          # "block" or "inline" while inside $$...$$
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if not line.strip():
            inline = False
            display = display if display == "block" else None
            continue
        if (inline or display == "inline") and LIST_ITEM.match(line):
            found.append(number)
        if not (inline or display):
            opening = FENCE.match(line)
            if opening:
                fence = opening.group(1)
                continue
        for token in DOLLARS.findall(INLINE_CODE.sub("", line)):
            if token == "$$" and not inline:
                if display:
                    display = None
                else:
                    display = "block" if line.lstrip().startswith("$$") else "inline"
            elif token == "$" and not display:
                inline = not inline
    return found


def _markdown_cells(path, source):
    """(cell index, text) pairs to scan: (None, the page), or a notebook's Markdown cells."""
    if path.suffix != ".ipynb":
        return [(None, source)]
    cells = json.loads(source).get("cells", [])
    return [(i, "".join(cell["source"]))
            for i, cell in enumerate(cells) if cell.get("cell_type") == "markdown"]


def check_source(app, docname, source):
    path = Path(app.env.doc2path(docname))
    if path.suffix not in (".md", ".ipynb"):
        return
    for cell, text in _markdown_cells(path, source[0]):
        lines = text.splitlines()
        for number in list_items_in_math(text):
            where = (docname, number) if cell is None else docname
            logger.warning(
                "%sa list item starts inside a $...$ formula and cuts it in two; move %r off "
                "the start of the line (%r)",
                "" if cell is None else f"markdown cell {cell}, line {number}: ",
                LIST_ITEM.match(lines[number - 1]).group().strip(), lines[number - 1][:60],
                location=where, type="loopy", subtype="math_list")


def setup(app):
    app.connect("source-read", check_source)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
