"""The library's layout rules (ARCHITECTURE.md), checked on the source: one place picks the
kernels, kernels share helpers only through public names, and BPTT does not import the RNN."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "loopy_edu"
MODULES = sorted(SRC.glob("*.py"))
KERNELS = sorted((SRC / "kernels").glob("*.py"))


def _imports(path):
    """(module, names) of every ``from X import names`` in the file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or ""), [a.name for a in node.names]


def _runtime_imports(path):
    """Like _imports, without those under ``if TYPE_CHECKING:`` (they never run)."""
    tree = ast.parse(path.read_text(encoding="utf8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and id(node) not in skip:
            yield "." * node.level + (node.module or ""), [a.name for a in node.names]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_only_backend_imports_kernels(path):
    if path.name == "backend.py":
        return
    found = [m for m, _ in _imports(path) if m.startswith(".kernels")]
    assert not found, f"{path.name} imports {found}; use backend.kernels(idea, backend)"


@pytest.mark.parametrize("path", KERNELS, ids=lambda p: p.name)
def test_kernels_import_no_private_names(path):
    private = [(m, n) for m, names in _imports(path) for n in names
               if n.startswith("_") and m.startswith(".")]
    assert not private, f"kernels/{path.name} imports private names {private}"


def test_bptt_does_not_import_rnn():
    """rnn imports bptt for RNN.loss_and_grads; the reverse would be a cycle."""
    assert not [m for m, _ in _runtime_imports(SRC / "bptt.py") if m == ".rnn"]
    assert ".bptt" in [m for m, _ in _runtime_imports(SRC / "rnn.py")]
