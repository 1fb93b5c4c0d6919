"""Does the library work outside this repository, installed the way a user installs it?

Builds the wheel from the files git would commit (tracked, and untracked but not ignored),
checks that it holds the package and nothing else, installs it into a throwaway virtual
environment with the registry's dependencies only (no requirements.txt, no numba-cuda), then,
from a folder outside the repository: imports every module, checks that backend="cuda" without
numba-cuda says how to install it, runs README.md's python blocks as written, and runs a small
sweep on a LocalCluster of two worker processes with the command line, then replays its results
file. Temporary folders are removed at the end.

    python tools/check_wheel.py        (make wheel-check; make test runs it)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "loopy_edu"
CUDA_INSTALL = 'pip install "loopy_edu[cuda]"'
# Without git (a release tarball), what a checkout ignores must still stay out of the build.
SKIP = {".git", ".venv", "_build", "build", "dist", ".pytest_cache", ".hypothesis",
        ".jupyter_cache", "node_modules", "__pycache__"}

# Run inside the fresh environment: every module imports without numba-cuda, and backend="cuda"
# fails with the install hint whether or not the CUDA simulator is switched on.
IMPORTS = f"""
import importlib, importlib.metadata, pkgutil, sys
import {PACKAGE}
try:
    importlib.metadata.distribution("numba-cuda")
except importlib.metadata.PackageNotFoundError:
    pass
else:
    sys.exit("numba-cuda is installed, so this check proves nothing about the core install")
names = [m.name for m in pkgutil.walk_packages({PACKAGE}.__path__, "{PACKAGE}.")
         if not m.name.startswith("{PACKAGE}.kernels.")]
for name in names:
    importlib.import_module(name)
print(f"imported {{len(names)}} modules of {PACKAGE} {{{PACKAGE}.__version__}}, no numba-cuda")
"""
CUDA = f"""
from {PACKAGE}.mlp import MLP
try:
    MLP([4, 3, 2], backend="cuda")
except Exception as err:
    message = f"{{type(err).__name__}}: {{err}}"
else:
    raise SystemExit('backend="cuda" was accepted without numba-cuda installed')
assert {CUDA_INSTALL!r} in message, f"the error does not say how to install CUDA: {{message}}"
print("backend='cuda' ->", message)
"""


def readme_example():
    """README.md's python blocks, in order, as one script: the check runs what README shows."""
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    if not blocks:
        sys.exit("README.md has no ```python block to run")
    return "\n".join(blocks)


def source_files():
    """Paths (relative to ROOT) that a clean checkout of the working tree would hold."""
    try:
        listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        out = subprocess.run(listing, cwd=ROOT, capture_output=True, check=True).stdout
        files = [Path(p) for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: a release tarball
        files = [p.relative_to(ROOT) for p in ROOT.rglob("*") if p.is_file()]
    def kept(p):
        return not SKIP & set(p.parts) and not any(s.endswith(".egg-info") for s in p.parts)

    return [p for p in files if kept(p) and (ROOT / p).is_file()]


def run(cmd, **kwargs):
    cmd = [str(c) for c in cmd]
    print("$", " ".join(cmd), flush=True)
    if subprocess.run(cmd, **kwargs).returncode:
        sys.exit(f"wheel check failed: {' '.join(cmd)} (in {kwargs.get('cwd', ROOT)})")


def check_wheel_contents(wheel, src):
    """The wheel holds every module of the package (kernels included) and nothing else."""
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    modules = (src / "src" / PACKAGE).rglob("*.py")
    expected = {p.relative_to(src / "src").as_posix() for p in modules}
    missing = expected - names
    extra = {n for n in names - expected if not re.match(rf"{PACKAGE}-[^/]+\.dist-info/", n)}
    if missing or extra:
        sys.exit(f"wheel {wheel.name}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    print(f"{wheel.name}: {len(expected)} modules, nothing else")


def main():
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="loopy_edu_wheel_"))
    try:
        src, dist, env, work = tmp / "src", tmp / "dist", tmp / "venv", tmp / "work"
        for rel in source_files():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, src])
        (wheel,) = dist.glob(f"{PACKAGE}-*.whl")
        check_wheel_contents(wheel, src)

        run([sys.executable, "-m", "venv", env])
        python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        t0 = time.perf_counter()
        run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel])
        install_s = time.perf_counter() - t0

        # Outside the repository, so that nothing can import the source tree by accident.
        work.mkdir()
        environ = dict(os.environ)
        environ.pop("PYTHONPATH", None)
        shared = ROOT.parent / "shared" / "data"
        if shared.is_dir():
            environ.setdefault("LOOPY_EDU_DATA", str(shared))
        (work / "check_imports.py").write_text(IMPORTS)
        (work / "check_cuda_hint.py").write_text(CUDA)
        (work / "readme_example.py").write_text(readme_example())
        run([python, "check_imports.py"], cwd=work, env=environ)
        for sim in ("0", "1"):
            sim_env = {**environ, "NUMBA_ENABLE_CUDASIM": sim}
            run([python, "check_cuda_hint.py"], cwd=work, env=sim_env)
        t0 = time.perf_counter()
        run([python, "readme_example.py"], cwd=work, env=environ)
        example_s = time.perf_counter() - t0
        sweep = [python, "-m", f"{PACKAGE}.sweep"]
        run([*sweep, "run", "murray", "--seeds", "0-1", "--set", "trials=200", "--workers", "2",
             "--out", "sweep.json", "--no-progress"], cwd=work, env=environ)
        run([*sweep, "replay", "sweep.json"], cwd=work, env=environ)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wheel check passed: wheel install {install_s:.1f} s, README example "
          f"{example_s:.1f} s, total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
