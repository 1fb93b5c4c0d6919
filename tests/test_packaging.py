"""Packaging: the library installs outside this repository; the labs open in Colab and Binder.

The install itself runs end to end in `make wheel-check` (tools/check_wheel.py: build the wheel,
install it into a fresh virtual environment from the registry, run README.md's examples outside
the repository). These are the checks that need no network: one version, a license that matches,
the dependencies that the code needs, one repository URL, a Binder environment that installs the
package, and launch buttons on the labs only.
"""
import ast
import importlib.util
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import loopy_edu

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
URL = CONFIG["repository"]["url"]
LABS = sorted((ROOT / "notebooks").glob("*_lab.ipynb"))

# Needed at run time although no module imports it, and why.
NEEDED_UNIMPORTED = {"scipy": "Numba compiles np.dot and @ in the kernels to BLAS via scipy"}
# Imported, but only when present, and why.
OPTIONAL_IMPORTS = {"torch": "bench.py times PyTorch beside the backends when it is installed",
                    "reservoirpy": "bench.py times reservoirpy's Reservoir.run beside the loopy "
                                   "kernels when it is installed"}
# A Jupyter kernel brings these along.
KERNEL_PROVIDES = {"IPython", "ipykernel"}


def _name(requirement):
    """The normalised distribution name of a requirement: "numba-cuda>=0.20" -> "numba-cuda"."""
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def _third_party_imports(source):
    """Top-level module names that `source` imports, less the standard library and loopy_edu."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"loopy_edu"}


def _code_cells(lab):
    cells = json.loads(lab.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def _python(cell):
    """A code cell without its IPython magics and shell escapes, which ast cannot parse."""
    return "\n".join("" if re.match(r"\s*[%!]", line) else line for line in cell.splitlines())


def test_version_is_defined_once():
    assert "version" not in PROJECT, "pyproject.toml must not repeat the version"
    assert "version" in PROJECT.get("dynamic", [])
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "loopy_edu.__version__"}
    version = loopy_edu.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", version), version
    defined = [p for p in (ROOT / "src").rglob("*.py") if re.search(r"^__version__\s*=",
                                                                     p.read_text(), re.M)]
    assert defined == [ROOT / "src" / "loopy_edu" / "__init__.py"], defined


def test_license_matches_pyproject():
    text = (ROOT / "LICENSE").read_text()
    assert PROJECT["license"] == "MIT"
    assert text.startswith("MIT License\n"), "LICENSE must be the MIT license pyproject names"
    assert "Permission is hereby granted, free of charge" in text
    assert re.search(r"^Copyright \(c\) \d{4} \S", text, re.M), "LICENSE needs a copyright line"
    assert "LICENSE" in PROJECT.get("license-files", []), "the wheel must carry LICENSE"


def test_dependencies_are_what_the_library_needs():
    imported = set()
    for path in (ROOT / "src" / "loopy_edu").rglob("*.py"):
        imported |= _third_party_imports(path.read_text())
    needed = (imported - set(OPTIONAL_IMPORTS)) | set(NEEDED_UNIMPORTED)
    declared = {_name(r) for r in PROJECT["dependencies"]}
    assert declared == {m.replace("_", "-").lower() for m in needed}, (declared, needed)


def test_scipy_is_needed_by_the_kernels_matrix_products():
    """The reason NEEDED_UNIMPORTED gives for scipy holds: a Numba kernel uses @ or np.dot."""
    def products(path):
        tree = ast.parse(path.read_text())
        return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult)
                   or isinstance(n, ast.Attribute) and n.attr == "dot" for n in ast.walk(tree))

    kernels = sorted((ROOT / "src" / "loopy_edu" / "kernels").glob("*_numba.py"))
    assert any(products(p) for p in kernels), "no Numba kernel needs BLAS: drop scipy"


def test_cuda_is_an_optional_extra():
    extras = PROJECT["optional-dependencies"]
    assert {_name(r) for r in extras["cuda"]} == {"numba-cuda"}
    assert "numba-cuda" not in {_name(r) for r in PROJECT["dependencies"]}
    # The book and the tests run the CUDA kernels in the simulator, so their environment has it.
    assert "numba-cuda" in {_name(r) for r in (ROOT / "requirements.txt").read_text().split()
                            if not r.startswith("#") and re.match(r"[A-Za-z]", r)}


def test_the_repository_url_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL), URL


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_lab_setup_cell_installs_from_the_repository(lab):
    first = _code_cells(lab)[0]
    # The URL must end where the pip spec's URL ends: a longer repository name would not match.
    assert re.search(rf"git\+{re.escape(URL)}(?=[@#\"'\s]|$)", first), (
        f"{lab.name}: the first code cell must install from git+{URL} (repository.url in "
        "_config.yml)")


def test_every_lab_is_checked():
    assert len(LABS) >= 10, [p.name for p in LABS]


def test_readme_installs_from_the_configured_repository():
    urls = re.findall(r"git\+(https://[^\s\"'@#]+)", (ROOT / "README.md").read_text())
    assert urls, "README.md must say how to install from the repository"
    assert set(urls) == {URL}, f"README.md installs from {set(urls)}, _config.yml says {URL}"


def test_binder_installs_the_package():
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    commands = [line.strip() for line in post_build.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    installs_here = re.compile(r"\bpip install\b(\s+-\S+)*\s+\.(\s|$)")
    assert any(installs_here.search(c) for c in commands), commands


def test_binder_has_what_the_labs_import():
    requirements = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    available = {_name(r) for r in requirements if re.match(r"[A-Za-z]", r)}
    available |= {_name(r) for r in PROJECT["dependencies"]}
    available |= {_name(m) for m in KERNEL_PROVIDES}
    for lab in LABS:
        for cell in _code_cells(lab):
            imported = _third_party_imports(_python(cell))
            missing = {m for m in imported if _name(m) not in available}
            assert not missing, f"{lab.name} imports {missing}, which binder/ does not install"


def test_labs_extra_has_what_the_labs_import():
    """The setup cell installs loopy_edu[labs] in Colab: that extra must cover the labs' imports."""
    available = {_name(r) for r in PROJECT["optional-dependencies"]["labs"]}
    available |= {_name(r) for r in PROJECT["dependencies"]} | {_name(m) for m in KERNEL_PROVIDES}
    for lab in LABS:
        assert '"loopy_edu[labs] @ "' in _code_cells(lab)[0], lab.name
        for cell in _code_cells(lab):
            missing = {m for m in _third_party_imports(_python(cell)) if _name(m) not in available}
            assert not missing, f"{lab.name} imports {missing}, which loopy_edu[labs] lacks"


def test_binder_python_is_one_the_package_supports():
    version = (ROOT / "binder" / "runtime.txt").read_text().strip()
    minor = int(re.fullmatch(r"python-3\.(\d+)", version).group(1))
    low = int(re.search(r">=\s*3\.(\d+)", PROJECT["requires-python"]).group(1))
    high = int(re.search(r"<\s*3\.(\d+)", PROJECT["requires-python"]).group(1))
    assert low <= minor < high, (version, PROJECT["requires-python"])


def _launch_extension():
    path = ROOT / "book" / "_ext" / "launch_buttons_labs.py"
    spec = importlib.util.spec_from_file_location("launch_buttons_labs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_buttons_are_registered():
    assert CONFIG["sphinx"]["local_extensions"]["launch_buttons_labs"] == "book/_ext"
    launch = CONFIG["launch_buttons"]
    assert launch.get("colab_url") and launch.get("binderhub_url")


def test_launch_buttons_on_labs_only():
    ext = _launch_extension()
    pages = {"book/06_rtrl": ".md", "notebooks/06_rtrl_lab": ".ipynb"}
    env = SimpleNamespace(all_docs=dict.fromkeys(pages),
                          doc2path=lambda name: str(ROOT / name) + pages[name])
    app = SimpleNamespace(env=env)
    kept = {}
    for page in pages:
        buttons = [{"label": ext.LAUNCH_GROUP}, {"label": "download-buttons"}]
        context = {"header_buttons": buttons}
        ext.drop_launch_buttons(app, page, "page.html", context, None)
        kept[page] = [b["label"] for b in context["header_buttons"]]
    assert kept["book/06_rtrl"] == ["download-buttons"]
    assert kept["notebooks/06_rtrl_lab"] == [ext.LAUNCH_GROUP, "download-buttons"]


def test_launch_extension_runs_after_the_theme_adds_the_buttons():
    """The extension relies on the theme's group label and handler priority: a theme upgrade
    that changes either must fail here, not silently bring the chapters' buttons back."""
    theme = importlib.util.find_spec("sphinx_book_theme")
    if theme is None:
        pytest.skip("sphinx-book-theme is not installed")
    theme_dir = Path(theme.origin).parent
    launch = (theme_dir / "header_buttons" / "launch.py").read_text()
    assert f'"label": "{_launch_extension().LAUNCH_GROUP}"' in launch
    theme_priority = int(re.search(r"add_launch_buttons,\s*priority=(\d+)",
                                   (theme_dir / "__init__.py").read_text()).group(1))
    connected = []
    _launch_extension().setup(SimpleNamespace(connect=lambda *a, **k: connected.append((a, k))))
    (event, _), kwargs = connected[0]
    assert event == "html-page-context" and kwargs["priority"] > theme_priority


def test_labs_link_to_themselves_in_colab_and_binder():
    """The slider note puts the launch links right there; they follow repository.url/branch."""
    repo = URL.removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    for lab in LABS:
        text = "".join("".join(c["source"]) for c in json.loads(lab.read_text())["cells"]
                       if c["cell_type"] == "markdown")
        assert (f"(https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/"
                f"{lab.name})") in text, lab.name
        assert (f"(https://mybinder.org/v2/gh/{repo}/{branch}?urlpath=lab/tree/notebooks/"
                f"{lab.name})") in text, lab.name
