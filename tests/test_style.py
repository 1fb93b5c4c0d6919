"""Reading comfort (issue 9): the code the book shows fits its column.

The chapters show library code with ``literalinclude`` and run their own code cells; a line
longer than the column makes a listing scroll sideways. So every line of the library, every
line of code in the chapters (code cells, and the code of exercises and solutions) and every
line of the labs' code cells is at most ``MAX_COLUMNS`` characters. Length is counted in
characters, not bytes: the code is full of Greek letters and mathematical symbols.
"""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_COLUMNS = 96

LIBRARY = sorted((ROOT / "src" / "loopy_edu").rglob("*.py"))
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
LABS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# An opening fence of runnable code: a MyST code cell, or a Python block (as in solutions).
CODE_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\{code-cell\}|python3?\b|py\b|ipython3?\b)")


def _rel(path):
    return path.relative_to(ROOT).as_posix()


def chapter_code(text):
    """(line number, line) of every line of runnable code in a MyST chapter.

    Code cells and ```python blocks count; a code cell's options (``:key: value`` lines or a
    ``---`` YAML header, which hold long figure alt texts) do not.
    """
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        opening = CODE_FENCE.match(lines[i])
        i += 1
        if not opening:
            continue
        fence = opening.group(1)
        closing = re.compile(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        if opening.group(2) == "{code-cell}":
            if i < len(lines) and lines[i].strip() == "---":
                i += 1
                while i < len(lines) and lines[i].strip() != "---":
                    i += 1
                i += 1
            while i < len(lines) and re.match(r"^:[\w-]+:", lines[i]):
                i += 1
        while i < len(lines) and not closing.match(lines[i]):
            yield i + 1, lines[i]
            i += 1
        i += 1


def lab_code(path):
    """(place, line) of every line of the lab's code cells; place reads "cell C, line L"."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for c, cell in enumerate(cells, 1):
        if cell["cell_type"] != "code":
            continue
        source = cell["source"]
        source = "".join(source) if isinstance(source, list) else source
        for n, line in enumerate(source.split("\n"), 1):
            yield f"cell {c}, line {n}", line


def too_long(numbered):
    """"place: N characters" for every (place, line) longer than MAX_COLUMNS."""
    return [f"{place}: {len(line)} characters" for place, line in numbered
            if len(line) > MAX_COLUMNS]


def _report(path, offenders):
    return (f"{len(offenders)} line(s) over {MAX_COLUMNS} characters in {_rel(path)}:\n  "
            + "\n  ".join(f"{_rel(path)}:{o}" for o in offenders))


def test_every_kind_of_source_is_found():
    # An empty glob would make the checks below pass without looking at anything.
    assert len(LIBRARY) > 20 and len(CHAPTERS) >= 10 and len(LABS) >= 10


@pytest.mark.parametrize("path", LIBRARY, ids=_rel)
def test_library_lines_fit_the_column(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    offenders = too_long(enumerate(lines, 1))
    assert not offenders, _report(path, offenders)


@pytest.mark.parametrize("path", CHAPTERS, ids=_rel)
def test_chapter_code_fits_the_column(path):
    code = list(chapter_code(path.read_text(encoding="utf-8")))
    assert code, f"{_rel(path)}: no code cells found (has the fence syntax changed?)"
    offenders = too_long(code)
    assert not offenders, _report(path, offenders)


@pytest.mark.parametrize("path", LABS, ids=_rel)
def test_lab_code_fits_the_column(path):
    code = list(lab_code(path))
    assert code, f"{_rel(path)}: no code cells found"
    offenders = too_long(code)
    assert not offenders, _report(path, offenders)


def test_the_checks_see_long_code_and_only_code():
    long = "x = " + "1 + " * 30 + "1"
    text = "\n".join([
        "Prose may run as long as it likes: " + "word " * 40,      # 1
        "```{code-cell} ipython3",                                  # 2
        "---",                                                      # 3
        "mystnb: {image: {alt: '" + "a long alt text " * 10 + "'}}",
        "---",                                                      # 5
        "short = 1",                                                # 6
        long,                                                       # 7
        "```",                                                      # 8
        "````{solution} ex-1",                                      # 9
        ":class: dropdown",                                         # 10
        "```python",                                                # 11
        "also = 2",                                                 # 12
        long,                                                       # 13
        "```",                                                      # 14
        "````",                                                     # 15
        "```{code-cell} ipython3",                                  # 16
        ":tags: [hide-input, " + "remove-output, " * 8 + "]",       # 17
        long,                                                       # 18
        "```",                                                      # 19
        "```text",                                                  # 20
        long,                                                       # 21
        "```",                                                      # 22
    ])
    code = list(chapter_code(text))
    assert [n for n, _ in code] == [6, 7, 12, 13, 18]
    assert too_long(code) == [f"{n}: {len(long)} characters" for n in (7, 13, 18)]
    # Characters, not bytes: 96 Greek letters fit, 97 do not.
    assert too_long([(1, "α" * 96), (2, "α" * 97)]) == ["2: 97 characters"]


def _unmarked_literal_blocks(source):
    """Docstring lines that start an indented block (a formula, a table) after a blank line
    without ``::`` on the line before it. reST then renders the block as a quote with its lines
    run together, as the API reference showed for the RNN's equations."""
    lines, found = source.split("\n"), []
    tree = ast.parse(source)
    for node in [tree] + [n for n in ast.walk(tree)
                          if isinstance(n, (ast.FunctionDef, ast.ClassDef))]:
        first = node.body[0] if node.body else None
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            continue
        for i in range(first.lineno, first.end_lineno - 1):
            prev, blank, block = lines[i - 1], lines[i], lines[i + 1]
            indent = len(prev) - len(prev.lstrip())
            if (not blank.strip() and prev.strip() and block.strip()
                    and len(block) - len(block.lstrip()) >= indent + 4
                    and not prev.rstrip().endswith("::") and set(prev.strip()) != {"-"}):
                found.append(i)
    return found


def test_literal_block_check_can_fail():
    bad = '"""Each step computes\n\n    u = W h\n"""\n'
    good = '"""Each step computes::\n\n    u = W h\n"""\n'
    assert _unmarked_literal_blocks(bad) == [1] and _unmarked_literal_blocks(good) == []


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_docstring_formulas_are_literal_blocks(path):
    found = _unmarked_literal_blocks(path.read_text(encoding="utf8"))
    assert not found, f"{path}: indented blocks without '::' before them, lines {found}"
