"""Experiments as sweeps: a grid of settings x seeds run on Dask, stored with its provenance.

An *experiment* is a plain function ``fn(seed, **settings) -> dict`` of numbers and small arrays
(a learning curve), deterministic given its arguments, registered with :func:`experiment`;
the course's own are in :mod:`loopy_edu.experiments`. :func:`run` runs the grid x seeds on
Dask's distributed scheduler: a ``LocalCluster`` of single-threaded worker processes on this
machine, or any cluster through its scheduler's address (``dask-jobqueue`` on SLURM/PBS,
Kubernetes), or this process alone with ``workers=0``. Every job runs with one BLAS thread, so
a (setting, seed) gives the same bits wherever it runs on one kind of machine (every row records
its :func:`fingerprint`: the BLAS core matters). A job that raises becomes a failed row;
a job whose worker dies is run again by the scheduler, so every (setting, seed) appears exactly
once.

:func:`save` writes one JSON results file, atomically, with one row per (setting, seed) and the
provenance (:func:`provenance`); :func:`load` reads it back; :func:`replay` re-runs its first
row to prove the stored numbers still come out of the code. The command line does the same::

    python -m loopy_edu.sweep list
    python -m loopy_edu.sweep run murray --seeds 0-9 --grid method=bptt,rflo --out murray.json
    python -m loopy_edu.sweep replay results/murray.json

The appendix "Running the course's experiments at scale" shows all of it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import importlib
import inspect
import itertools
import json
import logging
import math
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

FORMAT = "loopy_edu.sweep/1"
ROW_FIELDS = ("seed", "status", "error", "wall_s", "host", "worker", "machine")
WHERE = ["wall_s", "host", "worker", "machine"]       # where and how long a run ran
SETTING_TYPES = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment ``fn(seed, **settings) -> dict`` (see :func:`experiment`)."""

    name: str
    fn: Callable[..., dict]
    defaults: dict[str, Any]          # every setting, with its default (from fn's signature)
    choices: dict[str, tuple]         # the allowed values of some settings
    quick: dict[str, Any]             # settings that make a short run: a prefix of the full one
    curves: tuple[str, ...]           # the result keys whose prefix a quick run reproduces

    @property
    def about(self) -> str:
        """The first line of the experiment's docstring."""
        return (inspect.getdoc(self.fn) or "").split("\n")[0]


_REGISTRY: dict[str, Experiment] = {}


def experiment(name: str | None = None, *, choices: Mapping[str, Iterable] | None = None,
               quick: Mapping[str, Any] | None = None,
               curves: Iterable[str] = ()) -> Callable[[Callable], Callable]:
    """Register ``fn(seed, **settings) -> dict`` as an experiment, under ``name`` (default: the
    function's name). Returns a decorator that returns ``fn`` unchanged.

    Every setting needs a default of type bool, int, float or str: the defaults are the settings
    that ``list`` prints and a results file stores.

    Parameters
    ----------
    name : str or None
        The name that ``run`` and the command line use.
    choices : mapping or None
        ``{setting: allowed values}``; other values are refused before anything runs.
    quick : mapping or None
        Settings under which a run is a prefix of the full run (fewer trials, say): what
        :func:`replay` runs for a long experiment.
    curves : iterable of str
        The result keys whose first entries the quick run reproduces; the rest of its result is
        not compared.
    """
    def register(fn: Callable) -> Callable:
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].name != "seed":
            raise TypeError(f"{fn.__name__}: an experiment's first argument is seed")
        defaults = {}
        for p in params[1:]:
            if not isinstance(p.default, SETTING_TYPES) or p.kind in (p.VAR_POSITIONAL,
                                                                     p.VAR_KEYWORD):
                raise TypeError(f"{fn.__name__}: setting {p.name!r} needs a default of type "
                                f"bool, int, float or str, got {p.default!r}")
            defaults[p.name] = p.default
        exp = Experiment(name or fn.__name__, fn, defaults,
                         {k: tuple(v) for k, v in (choices or {}).items()}, dict(quick or {}),
                         tuple(curves))
        for key, value in {**exp.quick, **{k: v[0] for k, v in exp.choices.items()}}.items():
            _check_setting(exp, key, value, "experiment")
        _REGISTRY[exp.name] = exp
        return fn
    return register


def registry() -> dict[str, Experiment]:
    """Every registered experiment by name: the course's and any that user code registered."""
    importlib.import_module("loopy_edu.experiments")      # registers the course's experiments
    return dict(_REGISTRY)


def get(name: str) -> Experiment:
    """The experiment registered as ``name``; ValueError naming the registered ones if none."""
    known = registry()
    if name not in known:
        raise ValueError(f"name: no experiment {name!r}; registered: "
                         f"{', '.join(sorted(known))}")
    return known[name]


# --- settings, grids and seeds ----------------------------------------------------------------

def _parse_value(text: str, kind: type, where: str) -> Any:
    """A setting's value from the command line, as the type of its default."""
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(f"{where}: expected true or false, got {text!r}")
        return lowered in ("true", "1")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{where}: expected {kind.__name__}, got {text!r}") from None


def _check_setting(exp: Experiment, key: str, value: Any, where: str) -> Any:
    """``value`` as a setting ``key`` of ``exp`` (strings parsed to the default's type)."""
    if key not in exp.defaults:
        raise ValueError(f"{where}: {exp.name} has no setting {key!r}; its settings are "
                         f"{', '.join(exp.defaults) or 'none'}")
    kind, where = type(exp.defaults[key]), f"{where}[{key!r}]"
    if isinstance(value, str) and kind is not str:
        value = _parse_value(value, kind, where)
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind or (kind is float and not math.isfinite(value)):
        raise ValueError(f"{where}: expected {'a finite ' if kind is float else ''}"
                         f"{kind.__name__}, got {value!r}")
    if key in exp.choices and value not in exp.choices[key]:
        raise ValueError(f"{where}: expected one of {list(exp.choices[key])}, got {value!r}")
    return value


def points(exp: Experiment, settings: Mapping[str, Any] | None = None,
           grid: Mapping[str, Iterable] | None = None) -> list[dict[str, Any]]:
    """The full settings of every point of the grid: defaults, then ``settings``, then each
    combination of ``grid``'s values (the first key varies slowest)."""
    settings, grid = dict(settings or {}), dict(grid or {})
    base = {**exp.defaults, **{k: _check_setting(exp, k, v, "settings")
                               for k, v in settings.items()}}
    axes = []
    for key, values in grid.items():
        if key in settings:
            raise ValueError(f"grid[{key!r}]: {key} is also fixed by settings; give it once")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ValueError(f"grid[{key!r}]: expected a list of values, got {values!r}")
        values = [_check_setting(exp, key, v, "grid") for v in values]
        if not values or len(set(values)) != len(values):
            raise ValueError(f"grid[{key!r}]: expected distinct values, at least one, "
                             f"got {values!r}")
        axes.append([(key, v) for v in values])
    return [{**base, **dict(combo)} for combo in itertools.product(*axes)]


def parse_seeds(seeds: str | int | Iterable[int]) -> list[int]:
    """Seeds from ``"0-9"``, ``"0,3,5-7"``, an int (that many, from 0) or a list of ints."""
    if isinstance(seeds, str):
        if not re.fullmatch(r"\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*", seeds):
            raise ValueError(f"seeds: expected a range such as '0-9' or '0,3,5-7', "
                             f"got {seeds!r}")
        out = []
        for part in seeds.split(","):
            low, _, high = part.strip().partition("-")
            if high and int(high) < int(low):
                raise ValueError(f"seeds: the range {part.strip()!r} runs backwards")
            out.extend(range(int(low), int(high or low) + 1))
    elif isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        out = list(range(int(seeds)))
    else:
        out = list(seeds) if isinstance(seeds, Iterable) else [seeds]
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0
                   for s in out):
            raise ValueError(f"seeds: expected non-negative integers, got {seeds!r}")
        out = [int(s) for s in out]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds: expected distinct seeds, at least one, got {seeds!r}")
    return out


# --- one job ----------------------------------------------------------------------------------

def _plain(value: Any, key: str) -> Any:
    """A result value as a Python scalar or a NumPy array of numbers."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.ndim == 0:
        raise TypeError(f"result[{key!r}]: expected a number or an array of numbers, "
                        f"got {type(value).__name__}")
    return array.astype(np.float64 if array.dtype.kind == "f" else np.int64)


def _worker_address() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return "in-process"


def run_one(fn: Callable[..., dict], seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Run one (setting, seed) with one BLAS thread; a raised exception becomes a failed row.

    Returns a row: ``seed``, ``settings``, ``status`` ("ok" or "failed"), ``error``, ``wall_s``,
    ``host``, ``worker``, ``machine`` (:func:`fingerprint`) and ``result`` (``{key: number or
    array}``).
    """
    start = time.perf_counter()
    try:
        with threadpool_limits(1):
            result = fn(seed, **settings)
        if not isinstance(result, Mapping):
            raise TypeError(f"an experiment returns a dict, got {type(result).__name__}")
        result = {str(k): _plain(v, k) for k, v in result.items()}
        taken = sorted(set(result) & {*settings, *ROW_FIELDS})
        if taken:      # a results table has one column per name
            raise ValueError(f"result keys {taken} are also names of settings or row fields; "
                             f"rename them")
        status, error = "ok", ""
    except Exception as exc:     # the sweep goes on; the row records what went wrong
        result, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"
    return dict(seed=seed, settings=dict(settings), status=status, error=error,
                wall_s=time.perf_counter() - start, host=socket.gethostname(),
                worker=_worker_address(), machine=fingerprint(), result=result)


# --- clusters ---------------------------------------------------------------------------------

def local_client(workers: int | None = None, dashboard: bool = True):
    """A Dask ``Client`` of its own ``LocalCluster`` on 127.0.0.1: ``workers`` single-threaded
    worker processes (default: one per core). Closing the client stops the cluster; use it as a
    context manager. ``client.dashboard_link`` is Dask's dashboard (it needs bokeh)."""
    from distributed import Client
    n = _check_workers(workers) or os.cpu_count() or 1
    return Client(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                  dashboard_address=":0" if dashboard else None, silence_logs=logging.ERROR)


def connect(address: str, timeout: float = 10.0):
    """A Dask ``Client`` of the scheduler at ``address`` (``tcp://HOST:PORT``); ConnectionError
    if it does not answer within ``timeout`` seconds."""
    from distributed import Client
    if not isinstance(address, str) or not re.fullmatch(r"(tcp|tls|inproc|ws|wss)://\S+",
                                                        address):
        raise ValueError(f"scheduler: expected an address such as tcp://127.0.0.1:8786, "
                         f"got {address!r}")
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(f"scheduler: no answer from {address} within {timeout:g} s "
                               f"({type(exc).__name__})") from exc


def _check_workers(workers: int | None) -> int | None:
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or workers < 0):
        raise ValueError(f"workers: expected a non-negative integer or None, got {workers!r}")
    return workers


def _execute(exp: Experiment, jobs: list[tuple[dict, int]], client, workers: int | None,
             progress: bool) -> list[dict]:
    """Run every (settings, seed) job; return their rows in completion order."""
    bar = dict(total=len(jobs), desc=exp.name, unit="run", disable=not progress or not jobs)
    if not jobs:
        return []
    if client is None and workers == 0:
        return [run_one(exp.fn, seed, point) for point, seed in tqdm(jobs, **bar)]
    from distributed import as_completed
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(local_client(workers, dashboard=False))
        elif isinstance(client, str):
            client = stack.enter_context(connect(client))
        tag = uuid.uuid4().hex[:8]
        futures = {client.submit(run_one, exp.fn, seed, point, pure=False,
                                 key=f"{exp.name}-{tag}-{i}"): i
                   for i, (point, seed) in enumerate(jobs)}
        stack.callback(client.cancel, list(futures))    # Ctrl-C: nothing left running
        rows = []
        for future in tqdm(as_completed(futures), **bar):
            try:
                rows.append(future.result())
            except Exception as exc:    # the scheduler gave up on it (its workers kept dying)
                point, seed = jobs[futures[future]]
                rows.append(dict(seed=seed, settings=point, status="failed",
                                 error=f"{type(exc).__name__}: {exc}", wall_s=math.nan,
                                 host="", worker="", machine="", result={}))
            future.release()
        return rows


# --- provenance and results files -------------------------------------------------------------

def _git(where: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _repository() -> Path | None:
    """The git checkout whose code ran: loopy_edu's own when it is installed from a checkout
    (editable), else the one the sweep was started in (a researcher's project), else None."""
    package = Path(__file__).resolve().parent
    for where in (package, Path.cwd()):
        top = _git(where, "rev-parse", "--show-toplevel")
        mine = top and (Path(top) / "src" / "loopy_edu").resolve() == package
        if top and (mine or where == Path.cwd()):
            return Path(top)
    return None


@functools.cache
def machine() -> dict[str, str]:
    """What the bits of a floating-point result can depend on: the CPU, the versions of
    Python, NumPy and Numba, and the BLAS libraries' cores. Two machines that agree on all of it
    give the same bits. Of these, the BLAS core is known to matter: OpenBLAS's Haswell kernels
    sum in another order than its SkylakeX ones, and a training run then drifts away (see
    ARCHITECTURE.md, "Stored results")."""
    import numba
    from llvmlite import binding
    return {"cpu": binding.get_host_cpu_name(), "arch": platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "blas": _blas()}


def fingerprint() -> str:
    """:func:`machine` as one line, recorded with every run (a cluster's nodes may differ)."""
    return " ".join(f"{k}={v}" for k, v in machine().items())


def _blas() -> str:
    """The BLAS libraries loaded for NumPy and for Numba (through SciPy), and their cores."""
    import scipy.linalg.cython_blas  # noqa: F401  (Numba's BLAS: load it to see it)
    from threadpoolctl import threadpool_info
    return ";".join(sorted(f"{i.get('internal_api')}:{i.get('architecture')}"
                           for i in threadpool_info() if i.get("user_api") == "blas"))


def provenance(command: str | None = None, scheduler: str = "") -> dict[str, Any]:
    """Where a results file came from: the package version, the git checkout (see
    ``_repository``), its commit and whether its tree was clean, the command, the host, when,
    the scheduler, and :func:`machine`. Clean means no change outside ``results/``: the files
    that earlier sweeps of a session wrote there are outputs, not code."""
    from . import __version__
    import distributed
    repo = _repository()
    commit = _git(repo, "rev-parse", "HEAD") if repo else None
    status = (_git(repo, "status", "--porcelain", "--", ".", ":(exclude)results") if commit
              else None)
    return {"package": "loopy_edu", "version": __version__,
            "git_repository": str(repo) if repo else None, "git_commit": commit,
            "git_clean": None if status is None else status == "",
            "command": command if command is not None else shlex.join(sys.argv),
            "host": socket.gethostname(), "scheduler": scheduler,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat("T", "seconds"),
            "dask": distributed.__version__, "pandas": pd.__version__,
            "machine": dict(machine())}


def _frame(exp: Experiment, rows: list[dict], prov: dict) -> pd.DataFrame:
    """One row per (setting, seed): the settings, then ROW_FIELDS, then the result keys."""
    keys = list(dict.fromkeys(k for r in rows for k in r["result"]))
    records = [{**r["settings"], **{f: r[f] for f in ROW_FIELDS},
                **{k: r["result"].get(k, math.nan) for k in keys}} for r in rows]
    frame = pd.DataFrame.from_records(records, columns=[*exp.defaults, *ROW_FIELDS, *keys])
    frame.attrs.update(experiment=exp.name, provenance=prov)
    return frame


def _rows(frame: pd.DataFrame) -> list[dict]:
    """The rows of a results frame, as run_one returns them."""
    exp_keys = [c for c in frame.columns[:list(frame.columns).index("seed")]]
    result_keys = list(frame.columns[list(frame.columns).index(ROW_FIELDS[-1]) + 1:])
    rows = []
    for rec in frame.to_dict("records"):
        ok = rec["status"] == "ok"
        rows.append(dict(settings={k: _scalar(rec[k]) for k in exp_keys},
                         **{f: _scalar(rec[f]) for f in ROW_FIELDS},
                         result={k: rec[k] for k in result_keys} if ok else {}))
    return rows


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _key(settings: Mapping[str, Any], seed: int) -> str:
    return json.dumps([sorted(settings.items()), seed])


def run(name: str, seeds: str | int | Iterable[int], settings: Mapping[str, Any] | None = None,
        grid: Mapping[str, Iterable] | None = None, client=None, *, workers: int | None = None,
        resume: str | os.PathLike | pd.DataFrame | None = None,
        out: str | os.PathLike | None = None,
        progress: bool = True, command: str | None = None) -> pd.DataFrame:
    """Run experiment ``name`` over the grid x ``seeds``; return one row per (setting, seed).

    Parameters
    ----------
    name : str
        A registered experiment (:func:`registry`).
    seeds : str, int or iterable of int
        ``"0-9"``, ``"0,3,5-7"``, a count, or a list (:func:`parse_seeds`).
    settings : mapping or None
        Settings fixed for every run; the rest keep their defaults.
    grid : mapping or None
        ``{setting: [values]}``: every combination is run with every seed.
    client : distributed.Client, str or None
        A Dask client, a scheduler's address, or None for a ``LocalCluster`` of ``workers``
        single-threaded processes (one per core by default) that lives for this call.
    workers : int or None
        The LocalCluster's size; ``0`` runs every job in this process, without Dask.
    resume : path, DataFrame or None
        Earlier results of the same experiment: its ok rows that belong to this sweep are kept
        and not run again (failed rows are run again).
    out : path or None
        Where to write the results file (:func:`save`), once every row is in.
    progress : bool
        Whether to show a progress bar.
    command : str or None
        The command recorded in the provenance (default: this process's ``sys.argv``).

    Returns
    -------
    pandas.DataFrame
        Columns: every setting, ``seed``, ``status``, ``error``, ``wall_s``, ``host``,
        ``worker``, then the result keys (numbers, or arrays in object columns); rows in grid
        order, then seed order. ``frame.attrs`` holds ``experiment`` and ``provenance``.
    """
    exp = get(name)
    seeds = parse_seeds(seeds)
    jobs = [(point, seed) for point in points(exp, settings, grid) for seed in seeds]
    _check_workers(workers)
    if client is not None and workers is not None:
        raise ValueError("workers: give either a client or a number of workers, not both")
    kept = {}
    if resume is not None:
        earlier = resume if isinstance(resume, pd.DataFrame) else load(resume)
        if earlier.attrs.get("experiment") != exp.name:
            raise ValueError(f"resume: holds experiment {earlier.attrs.get('experiment')!r}, "
                             f"not {exp.name!r}")
        wanted = {_key(p, s) for p, s in jobs}
        kept = {k: r for r in _rows(earlier) if r["status"] == "ok"
                and (k := _key(r["settings"], r["seed"])) in wanted}
        jobs = [(p, s) for p, s in jobs if _key(p, s) not in kept]
    scheduler = ("in-process" if client is None and workers == 0 else
                 f"LocalCluster({workers or os.cpu_count()} workers)" if client is None else
                 client if isinstance(client, str) else client.scheduler.address)
    prov = provenance(command, scheduler)
    done = {_key(r["settings"], r["seed"]): r
            for r in _execute(exp, jobs, client, workers, progress)}
    order = [_key(p, s) for p in points(exp, settings, grid) for s in seeds]
    frame = _frame(exp, [done.get(k) or kept[k] for k in order], prov)
    if out is not None:
        save(frame, out)
    return frame


def _json_value(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else _scalar(value)


def save(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a results frame (from :func:`run`) to one JSON file: written to a temporary file
    beside it, then renamed, so an interrupted write leaves no partial file. Floats are written
    in full (``repr``), so :func:`load` gives back the same bits."""
    path = Path(path)
    if "experiment" not in frame.attrs or "provenance" not in frame.attrs:
        raise ValueError("frame: expected a results frame from sweep.run (attrs experiment and "
                         "provenance)")
    rows = [{**r, "result": {k: _json_value(v) for k, v in r["result"].items()}}
            for r in _rows(frame)]
    head = json.dumps({"format": FORMAT, "experiment": frame.attrs["experiment"],
                       "provenance": frame.attrs["provenance"]}, indent=1)
    # One line per row: a file of many long curves stays readable and diffs row by row.
    text = head[:-2] + ',\n "rows": [\n' + ",\n".join(
        json.dumps(r, separators=(",", ":")) for r in rows) + "\n ]\n}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp's 0600 would hide the file from others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results file written by :func:`save` into a frame like :func:`run`'s."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"path: cannot read a results file from {str(path)!r}: "
                         f"{exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"path: {str(path)!r} is not a {FORMAT} results file")
    exp = get(doc["experiment"])
    # A setting added to an experiment after the file was made takes its default, which must
    # keep the old behaviour (ARCHITECTURE.md, "Stored results").
    rows = [{**r, "settings": {**exp.defaults, **r["settings"]},
             "result": {k: np.asarray(v, dtype=np.float64) if isinstance(v, list) else v
                        for k, v in r["result"].items()}} for r in doc["rows"]]
    return _frame(exp, rows, doc["provenance"])


def identical(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two results frames hold the same runs with the same numbers, bit for bit: the
    same settings and seeds in the same order, the same status, error and results (NaN equal to
    NaN). Where each run ran, on what machine and how long it took are not compared."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    for column in a.columns.difference(WHERE):
        for x, y in zip(a[column], b[column]):
            x, y = np.asarray(x), np.asarray(y)
            numeric = x.dtype.kind in "biuf" and y.dtype.kind in "biuf"
            if not (np.array_equal(x, y, equal_nan=True) if numeric else np.array_equal(x, y)):
                return False
    return True


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Per setting (the settings that vary between rows), the mean and sd (ddof=1) over seeds of
    every scalar result, with the number of ok and failed runs."""
    exp = get(frame.attrs["experiment"])
    frame = frame.assign(experiment=exp.name)
    by = [k for k in exp.defaults if frame[k].nunique() > 1] or ["experiment"]
    ok = frame[frame.status == "ok"]
    types = pd.api.types
    scalars = [c for c in frame.columns[list(frame.columns).index(ROW_FIELDS[-1]) + 1:]
               if types.is_numeric_dtype(frame[c]) and not types.is_bool_dtype(frame[c])]
    groups = ok.groupby(by, sort=False)[scalars]
    stats = pd.concat({"mean": groups.mean(), "sd": groups.std(ddof=1)}, axis=1)
    stats = stats.swaplevel(axis=1)[scalars] if scalars else stats
    counts = frame.groupby(by, sort=False).status.agg(
        ok=lambda s: int((s == "ok").sum()), failed=lambda s: int((s != "ok").sum()))
    counts.columns = pd.MultiIndex.from_tuples([("ok", ""), ("failed", "")])
    return counts.join(stats) if scalars else counts


def format_summary(frame: pd.DataFrame) -> str:
    """:func:`summarize` as text: ``mean ± sd`` per scalar result."""
    stats = summarize(frame)
    table = pd.DataFrame({"ok": stats["ok", ""], "failed": stats["failed", ""]})
    for key in dict.fromkeys(c[0] for c in stats.columns if c[1]):
        table[key] = [f"{m:.4g}" + (f" ± {s:.2g}" if s == s else "")     # no sd of one seed
                      for m, s in zip(stats[key, "mean"], stats[key, "sd"])]
    return table.to_string()


def mean_sd(frame: pd.DataFrame, by: str | list[str], key: str) -> pd.Series:
    """One result's ``mean ± sd`` over seeds (sd with ddof=1), per value of the settings ``by``,
    as text: a chapter's table of one number.

    Parameters
    ----------
    frame : pd.DataFrame
        A results frame (:func:`run`, :func:`load`).
    by : str or list of str
        The settings to group by.
    key : str
        A scalar result.

    Returns
    -------
    pd.Series
        ``"mean ± sd"`` strings (three significant digits, two for the sd), indexed by ``by``.
    """
    groups = frame[frame.status == "ok"].groupby(by, sort=False)[key]
    return groups.mean().map("{:.3g}".format) + " ± " + groups.std(ddof=1).map("{:.2g}".format)


def origin(frame: pd.DataFrame) -> str:
    """Where a results frame came from, in two lines: the command, then the host, its CPU, the
    commit and whether the tree was clean (from its provenance)."""
    prov = frame.attrs["provenance"]
    return (f"`{prov['command']}`\n  on {prov['host']} ({prov['machine']['cpu']}), commit "
            f"{str(prov['git_commit'])[:10]}, clean tree: {prov['git_clean']}")


# --- replaying a stored result ----------------------------------------------------------------

@dataclasses.dataclass
class Replay:
    """What :func:`replay` found: ``verdict`` is "identical" or "different"; ``same_machine``
    says whether this machine's :func:`fingerprint` is the one the replayed run had."""

    path: str
    settings: dict[str, Any]
    seed: int
    quick: bool
    same_machine: bool
    compared: dict[str, int]                 # key -> number of values compared
    largest_difference: float                # relative, over every value compared
    verdict: str

    @property
    def ok(self) -> bool:
        return self.verdict == "identical"


def replay(path: str | os.PathLike) -> Replay:
    """Re-run the first ok row of a results file (its first setting's first seed) in this
    process, at its stored settings, and compare the numbers, bit for bit.

    A long experiment (one that registered ``quick`` settings) is re-run with them, and only the
    prefix of its ``curves`` is compared. Only a machine with the same :func:`fingerprint` as
    the run's can be expected to give the same bits: with another BLAS core, a result that
    training amplifies differs (``same_machine`` says which case this is).
    """
    frame = load(path)
    exp = get(frame.attrs["experiment"])
    stored = next((r for r in _rows(frame) if r["status"] == "ok"), None)
    if stored is None:
        raise ValueError(f"path: {str(path)!r} has no ok row to replay")
    quick = {k: v for k, v in exp.quick.items() if v < stored["settings"][k]}   # shorter only
    fresh = run_one(exp.fn, stored["seed"], {**stored["settings"], **quick})
    if fresh["status"] != "ok":
        raise RuntimeError(f"replaying {str(path)!r} failed: {fresh['error']}")
    keys = exp.curves if quick else tuple(stored["result"])
    compared, largest, identical = {}, 0.0, True
    for key in keys:
        old = np.atleast_1d(stored["result"][key])
        if key not in fresh["result"] and np.isnan(old.astype(float)).all():
            continue                 # a column that only other settings' rows have
        new = np.atleast_1d(fresh["result"].get(key, np.nan))
        old = old[:len(new)] if quick else old
        if old.shape != new.shape:
            largest, identical = math.inf, False
            break
        identical &= bool(np.array_equal(old, new, equal_nan=True))
        scale = np.maximum(np.abs(old), np.finfo(float).tiny)
        largest = max(largest, float(np.nanmax(np.abs(old - new) / scale, initial=0.0)))
        compared[key] = old.size
    return Replay(str(path), stored["settings"], stored["seed"], bool(quick),
                  stored["machine"] == fingerprint(), compared, largest,
                  "identical" if identical else "different")


# --- command line -----------------------------------------------------------------------------

def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise ValueError(f"{flag}: expected KEY=VALUE, got {item!r}")
        if key in out:
            raise ValueError(f"{flag}: {key} given twice")
        out[key] = value
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loopy_edu.sweep",
        description="Run the course's experiments as sweeps of settings x seeds on Dask.")
    parser.add_argument("--module", action="append", default=[], metavar="MODULE",
                        help="import MODULE first, to register its experiments (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the experiments, their settings and defaults")
    p = sub.add_parser("run", help="run NAME over a grid of settings x seeds")
    p.add_argument("name")
    p.add_argument("--seeds", required=True, help="e.g. 0-9 or 0,3,5-7")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a setting (repeatable)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="vary a setting (repeatable: the grid is every combination)")
    p.add_argument("--scheduler", help="a Dask scheduler's address, e.g. tcp://HOST:8786; "
                                       "default: a LocalCluster on this machine")
    p.add_argument("--workers", type=int, help="the LocalCluster's worker processes "
                                               "(default: one per core; 0: this process)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for --scheduler (default 10)")
    p.add_argument("--out", help="the results file (default NAME.json, never overwritten)")
    p.add_argument("--resume", help="a results file: keep its ok rows, run the missing ones "
                                    "(and write back to it unless --out is given)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    r = sub.add_parser("replay", help="re-run the first row of results files and compare")
    r.add_argument("paths", nargs="+")
    return parser


def _list() -> str:
    lines = []
    for name, exp in sorted(registry().items()):
        lines.append(f"{name}: {exp.about}")
        for key, default in exp.defaults.items():
            allowed = f"  (one of {', '.join(map(str, exp.choices[key]))})" \
                if key in exp.choices else ""
            lines.append(f"    {key} = {default!r}{allowed}")
    return "\n".join(lines)


def _cli_run(args: argparse.Namespace) -> pd.DataFrame:
    exp = get(args.name)
    grid = {k: v.split(",") for k, v in _pairs(args.grid, "--grid").items()}
    out = args.out or args.resume or f"{exp.name}.json"
    if not (args.out or args.resume) and Path(out).exists():
        raise ValueError(f"--out: {out} exists; name it with --out to overwrite, "
                         "or --resume it")
    if args.scheduler and args.workers is not None:
        raise ValueError("--workers: a LocalCluster's size; it cannot go with --scheduler")
    client = connect(args.scheduler, args.timeout) if args.scheduler else None
    with client if client is not None else contextlib.nullcontext():
        frame = run(exp.name, args.seeds, _pairs(args.set, "--set"), grid, client,
                    workers=args.workers, resume=args.resume, out=out,
                    progress=not args.no_progress,
                    command=shlex.join(["python", "-m", "loopy_edu.sweep", *sys.argv[1:]]))
    print(format_summary(frame))
    print(f"wrote {out}: {len(frame)} rows, {int((frame.status != 'ok').sum())} failed")
    return frame


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (2 for bad input, 130 for Ctrl-C)."""
    args = _parser().parse_args(argv)
    try:
        for module in args.module:
            importlib.import_module(module)
        if args.command == "list":
            print(_list())
        elif args.command == "run":
            _cli_run(args)
        else:
            results = [replay(p) for p in args.paths]
            for r in results:
                where = ("the same machine" if r.same_machine else "ANOTHER MACHINE: its bits "
                         "may differ; replay it on the machine its rows name")
                print(f"{r.path}: {r.verdict} (seed {r.seed}, {r.settings}, "
                      f"{'quick ' if r.quick else ''}{sum(r.compared.values())} numbers, "
                      f"largest relative difference {r.largest_difference:.1e}, {where})")
            return 0 if all(r.ok for r in results) else 1
    except (ValueError, ConnectionError, ModuleNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no results file written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this copy's: experiments register in loopy_edu.sweep.
    from loopy_edu.sweep import main as _main
    sys.exit(_main())
