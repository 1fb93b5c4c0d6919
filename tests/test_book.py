"""The book's structure: every chapter has its lab and its parts, and labs are committed without outputs.

Executing the pages is the book build's job (`make test` builds with --warningiserror, which runs every
chapter and lab from a fresh kernel); these checks catch what a build would not.
"""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files(node):
    if isinstance(node, dict):
        if "file" in node:
            yield node["file"]
        for value in node.values():
            yield from _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            yield from _toc_files(item)


TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
FILES = [TOC["root"]] + list(_toc_files(TOC["parts"]))
CHAPTERS = [f for f in FILES if re.match(r"book/\d\d_", f)]
LABS = [f for f in FILES if f.startswith("notebooks/")]


def test_every_toc_entry_exists():
    for f in FILES:
        assert (ROOT / f).with_suffix(".md").exists() or (ROOT / f).with_suffix(".ipynb").exists(), f


def test_every_chapter_has_a_lab():
    assert len(CHAPTERS) >= 4
    for chapter in CHAPTERS:
        stem = Path(chapter).name
        assert f"notebooks/{stem}_lab" in LABS, f"{chapter} has no lab in _toc.yml"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_its_parts(chapter):
    text = (ROOT / chapter).with_suffix(".md").read_text()
    assert text.startswith("---\njupytext:"), "chapters are MyST notebooks with the jupytext header"
    assert re.search(r"objectives", text, re.I) and re.search(r"estimated time|minutes", text, re.I)
    assert ":pyobject:" in text, "chapters show the library's code with literalinclude :pyobject:"
    assert "{exercise}" in text and "{solution}" in text and ":class: dropdown" in text
    assert "{cite" in text
    for path, obj in re.findall(r"```\{literalinclude\} (\S+)\n(?::[^\n]*\n)*?:pyobject: (\S+)", text):
        source = ((ROOT / chapter).parent / path).resolve()
        assert source.exists(), path
        name = obj.split(".")[-1]
        assert re.search(rf"^\s*(def|class) {re.escape(name)}\b", source.read_text(), re.M), (path, obj)


@pytest.mark.parametrize("lab", LABS)
def test_lab_is_committed_without_outputs(lab):
    nb = json.loads((ROOT / lab).with_suffix(".ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a lab has code"
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert any("ipywidgets" in "".join(c["source"]) for c in code), "a lab is interactive"


def _math_list_check():
    """book/_ext/math_list_check.py, the Sphinx extension that fails the build on garbled maths."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "math_list_check", ROOT / "book" / "_ext" / "math_list_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.list_items_in_math


@pytest.mark.parametrize("text, lines", [
    # Chapter 6 before the fix: the minus of a wrapped formula became a bullet.
    ("the cross-entropy $-p \\ln q\n- (1-p) \\ln(1-q)$. If it cannot", [2]),
    ("a sum $a\n+ b$ and a product $a\n* b$, a count $n =\n1. $", [2, 3, 4]),
    ("inline display $$a\n- b$$ is cut too", [2]),
    ("an unclosed $x ends with its paragraph\n\n- so this list is fine", []),
    ("- a list with $x$\n- and $y$\n\n1. numbered $z$\n2. too", []),
    ("a display block\n\n$$\nx = a\n+ b\n- c\n$$\n\n- a list", []),
    ("`$HOME` is code,\n- a list\n```bash\necho $PATH\n- not a list\n```\n- a list", []),
    ("it costs \\$5, and\n- this is a list", []),
])
def test_math_list_check_finds_list_markers_inside_formulas(text, lines):
    assert _math_list_check()(text) == lines


def test_no_formula_in_the_book_is_cut_by_a_list_marker():
    find = _math_list_check()
    for f in FILES:
        path = (ROOT / f).with_suffix(".md")
        if path.exists():
            assert not find(path.read_text()), (f, find(path.read_text()))
        else:
            cells = json.loads(path.with_suffix(".ipynb").read_text())["cells"]
            for i, cell in enumerate(c for c in cells if c["cell_type"] == "markdown"):
                assert not find("".join(cell["source"])), (f, "markdown cell", i)


def test_every_module_has_an_api_page():
    """One page per module of src/loopy_edu (not the kernels: see book/api/index.md)."""
    modules = sorted(p.stem for p in (ROOT / "src" / "loopy_edu").glob("*.py")
                     if p.stem != "__init__")
    assert modules
    for module in modules:
        page = f"book/api/{module}"
        assert page in FILES, f"_toc.yml has no API page {page} for loopy_edu.{module}"
        text = (ROOT / page).with_suffix(".md").read_text()
        assert f".. automodule:: loopy_edu.{module}\n" in text, page


def test_chapter_3_table_matches_the_backward_it_shows():
    """Defect 4: every code cell of Chapter 3's line-by-line table is a line of the `backward`
    that the chapter includes, so the table and the code cannot drift apart again."""
    import inspect

    from loopy_edu.mlp import backward
    text = (ROOT / "book" / "03_backprop.md").read_text()
    assert re.search(r"```\{literalinclude\} \.\./src/loopy_edu/mlp\.py\n:pyobject: backward\n", text)
    rows = re.findall(r"^\| `([^`]+)` \|", text, re.M)
    assert len(rows) >= 5, rows
    source = inspect.getsource(backward)
    for code in rows:
        assert code in source, f"chapter 3's table shows `{code}`, which backward does not have"
    for later in ("feedback", "masks", "direct"):
        assert later not in inspect.signature(backward).parameters
