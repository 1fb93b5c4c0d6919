"""The sweep runner (loopy_edu.sweep): the same bits wherever a job runs, faults survived, resume,
provenance, clear errors, and no scheduler or worker left behind. Every cluster here runs on
127.0.0.1 and is stopped by the test that started it."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

import sweep_toys  # noqa: F401  (registers the toy experiment)
from loopy_edu import sweep

TESTS = Path(__file__).resolve().parent
DASK = Path(sys.executable).parent / "dask"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def _children():
    """This process's descendants, less multiprocessing's resource tracker (one per process
    that ever started a worker process; it is not a scheduler or a worker, and exits with us)."""
    return [p for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())]


@pytest.fixture(autouse=True)
def no_process_left():
    """Every test stops what it started: no scheduler or worker outlives it."""
    yield
    deadline = time.monotonic() + 15
    while (alive := _children()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, [p.cmdline() for p in alive]


def _results(frame):
    """Everything a run computed, without where or how long it ran."""
    cols = [c for c in frame.columns if c not in sweep.WHERE]
    return [[np.asarray(v).tolist() for v in row] for row in frame[cols].itertuples(index=False)]


MURRAY = dict(name="murray", seeds="0-1", settings={"trials": 300},
              grid={"method": ["bptt", "rflo", "readout"]}, progress=False)


@pytest.fixture(scope="module")
def in_process():
    return sweep.run(**MURRAY, workers=0)


def test_local_cluster_gives_the_same_bits_as_in_process(in_process):
    local = sweep.run(**MURRAY, workers=2)
    assert set(local.worker) != {"in-process"} and len(set(local.worker)) == 2
    assert _results(local) == _results(in_process)
    assert list(local.status) == ["ok"] * 6


@pytest.fixture
def scheduler_and_workers(tmp_path):
    """A `dask scheduler` and two `dask worker` processes, started as a user would start them
    from a terminal; yields the scheduler's address."""
    file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", file], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--no-dashboard"], env=ENV,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with sweep.connect(address) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        if len(procs) > 1:
            with sweep.connect(address) as client:
                client.shutdown()                       # the scheduler and its workers
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_scheduler_and_workers_give_the_same_bits(in_process, scheduler_and_workers):
    separate = sweep.run(**MURRAY, client=scheduler_and_workers)
    assert separate.attrs["provenance"]["scheduler"] == scheduler_and_workers
    assert _results(separate) == _results(in_process)


def test_the_command_line_against_a_scheduler(tmp_path, scheduler_and_workers):
    out = tmp_path / "toy.json"
    done = subprocess.run([sys.executable, "-m", "loopy_edu.sweep", "--module", "sweep_toys",
                           "run", "toy", "--seeds", "0-5", "--grid", "n=3,5", "--set",
                           "scale=2", "--scheduler", scheduler_and_workers, "--out", out],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "± " in done.stdout and "wrote" in done.stdout
    frame = sweep.load(out)
    assert len(frame) == 12 and (frame.status == "ok").all() and set(frame.scale) == {2.0}
    mine = sweep.run("toy", "0-5", {"scale": 2.0}, {"n": [3, 5]}, workers=0, progress=False)
    assert _results(frame) == _results(mine)


def test_a_killed_worker_loses_and_duplicates_nothing():
    with sweep.local_client(2, dashboard=False) as client:
        pids = client.run(os.getpid)
        got = {}
        thread = threading.Thread(target=lambda: got.update(frame=sweep.run(
            "toy", "0-11", {"sleep": 0.4}, client=client, progress=False)))
        thread.start()
        time.sleep(1.0)                                 # mid-sweep: some rows done, some running
        assert thread.is_alive()
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        thread.join(timeout=120)
    frame = got["frame"]
    assert sorted(frame.seed) == list(range(12))      # every row exactly once
    assert (frame.status == "ok").all()
    plain = sweep.run("toy", "0-11", workers=0, progress=False)
    assert _results(frame[["final", "curve"]]) == _results(plain[["final", "curve"]])


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failing_experiment_gives_failed_rows(workers):
    frame = sweep.run("toy", "0-3", {"mode": "fail_odd"}, workers=workers, progress=False)
    assert list(frame.status) == ["ok", "failed", "ok", "failed"]
    assert frame.error[1] == "RuntimeError: seed 1 is odd" and frame.error[0] == ""
    assert np.isfinite(frame.final[[0, 2]]).all() and frame.final[[1, 3]].isna().all()


def test_resume_runs_only_the_missing_rows(tmp_path, monkeypatch):
    path = tmp_path / "toy.json"
    first = sweep.run("toy", "0-3", {"mode": "fail_odd"}, workers=0, progress=False, out=path)
    calls = []
    real = sweep.run_one
    monkeypatch.setattr(sweep, "run_one", lambda fn, seed, s: calls.append(seed) or real(fn, seed, s))
    again = sweep.run("toy", "0-5", {"mode": "ok"}, workers=0, progress=False, resume=path)
    assert calls == list(range(6))                    # other settings: nothing to keep
    calls.clear()
    resumed = sweep.run("toy", "0-5", {"mode": "fail_odd"}, workers=0, progress=False,
                        resume=path)
    assert calls == [1, 3, 4, 5]                      # the failed rows and the missing seeds
    assert list(resumed.seed) == list(range(6))
    assert _results(resumed.iloc[[0, 2]]) == _results(first.iloc[[0, 2]])
    assert len(again) == 6


def test_resume_refuses_another_experiment(tmp_path):
    path = tmp_path / "toy.json"
    sweep.run("toy", 1, workers=0, progress=False, out=path)
    with pytest.raises(ValueError, match="resume: holds experiment 'toy', not 'murray'"):
        sweep.run("murray", 1, workers=0, progress=False, resume=path)


def test_the_results_file_keeps_every_bit_and_the_provenance(tmp_path):
    frame = sweep.run("toy", "0-2", grid={"scale": [0.1, 3.0]}, workers=0, progress=False,
                      command="the command")
    path = sweep.save(frame, tmp_path / "sub" / "toy.json")
    back = sweep.load(path)
    assert _results(back) == _results(frame)
    assert list(back.wall_s) == list(frame.wall_s) and (frame.wall_s > 0).all()
    prov = back.attrs["provenance"]
    import numba
    from loopy_edu import __version__
    assert prov["version"] == __version__ and prov["command"] == "the command"
    assert len(prov["git_commit"]) == 40 and isinstance(prov["git_clean"], bool)
    assert prov["machine"]["numpy"] == np.__version__
    assert prov["machine"]["numba"] == numba.__version__
    assert prov["host"] and (back.host != "").all() and prov["scheduler"] == "in-process"
    assert (back.machine == sweep.fingerprint()).all()
    assert prov["machine"]["blas"] and prov["machine"]["cpu"]
    assert [p.name for p in path.parent.iterdir()] == ["toy.json"]    # no temporary file left


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "toy.json"
    frame = sweep.run("toy", 2, workers=0, progress=False, out=path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        sweep.save(frame, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["toy.json"]


def test_ctrl_c_leaves_no_results_file_and_no_process(tmp_path):
    """A real SIGINT to the command line, mid-sweep on its own LocalCluster."""
    out = tmp_path / "toy.json"
    proc = subprocess.Popen([sys.executable, "-m", "loopy_edu.sweep", "--module", "sweep_toys",
                             "run", "toy", "--seeds", "0-39", "--set", "sleep=2.0",
                             "--workers", "2", "--out", out, "--no-progress"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # A suite started in the background (cmd &) inherits SIGINT
                            # ignored; the command must see it as a terminal would send it.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60          # wait until its workers exist and are busy
    while (len(psutil.Process(proc.pid).children(recursive=True)) < 2
           and time.monotonic() < deadline):
        time.sleep(0.1)
    time.sleep(3)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "no results file written" in err
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_sweep_writes_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        sweep.run("toy", 2, {"mode": "interrupt"}, workers=0, progress=False,
                  out=tmp_path / "toy.json")
    assert list(tmp_path.iterdir()) == []


def test_summarize_gives_mean_and_sd_per_setting():
    frame = sweep.run("toy", "0-4", {"mode": "fail_odd"}, {"n": [2, 6]}, workers=0,
                      progress=False)
    stats = sweep.summarize(frame)
    for n in (2, 6):
        finals = frame.final[(frame.n == n) & (frame.status == "ok")]
        assert stats.loc[n, ("final", "mean")] == pytest.approx(finals.mean(), rel=1e-12)
        assert stats.loc[n, ("final", "sd")] == pytest.approx(finals.std(ddof=1), rel=1e-12)
        assert stats.loc[n, ("ok", "")] == 3 and stats.loc[n, ("failed", "")] == 2
    assert "±" in sweep.format_summary(frame)


def test_replay_proves_a_stored_result_and_catches_a_changed_one(tmp_path):
    path = tmp_path / "toy.json"
    sweep.run("toy", "0-1", {"n": 5}, workers=0, progress=False, out=path)
    r = sweep.replay(path)
    assert r.verdict == "identical" and r.ok and r.quick and r.compared == {"curve": 2}
    doc = json.loads(path.read_text())
    doc["rows"][0]["result"]["curve"][1] *= 1 + 2 ** -50   # one value, a few bits
    path.write_text(json.dumps(doc))
    r = sweep.replay(path)
    assert r.verdict == "different" and not r.ok and 0 < r.largest_difference < 1e-14
    assert r.same_machine
    doc["rows"][0]["machine"] = "cpu=elsewhere"
    path.write_text(json.dumps(doc))
    assert not sweep.replay(path).same_machine


def test_murray_quick_run_is_a_prefix_of_the_full_one():
    """The premise of replaying murray with fewer trials."""
    short, full = (sweep.run_one(sweep.get("murray").fn, 3, {"method": "rflo", "trials": t})
                   for t in (200, 400))
    for key in ("mse", "align", "clipped"):
        assert np.array_equal(short["result"][key], full["result"][key][:2])


def test_fa_mnist_quick_run_is_a_prefix_of_the_full_one():
    fn = sweep.get("fa_mnist").fn
    short, full = (sweep.run_one(fn, 0, {"method": m, "epochs": e, "hidden": 16})
                   for m, e in (("fa", 1), ("fa", 2)))
    assert short["status"] == full["status"] == "ok", (short["error"], full["error"])
    assert short["result"]["test_error"][0] == full["result"]["test_error"][0]


@pytest.mark.parametrize("args, message", [
    (["run", "nope", "--seeds", "0"], "name: no experiment 'nope'; registered: "),
    (["run", "murray", "--seeds", "0", "--set", "lr=1"],
     "settings: murray has no setting 'lr'; its settings are method, trials"),
    (["run", "murray", "--seeds", "0", "--set", "trials=many"],
     "settings['trials']: expected int, got 'many'"),
    (["run", "murray", "--seeds", "0", "--grid", "method=bptt,adam"],
     "grid['method']: expected one of ['bptt', 'rflo', 'readout'], got 'adam'"),
    (["run", "murray", "--seeds", "0-", "--workers", "0"], "seeds: expected a range such as"),
    (["run", "murray", "--seeds", "5-2"], "seeds: the range '5-2' runs backwards"),
    (["run", "murray", "--seeds", "0", "--grid", "method"], "--grid: expected KEY=VALUE"),
    (["run", "murray", "--seeds", "0", "--grid", "method=bptt,bptt"],
     "grid['method']: expected distinct values"),
    (["run", "murray", "--seeds", "0", "--set", "method=bptt", "--grid", "method=rflo"],
     "grid['method']: method is also fixed by settings"),
    (["run", "murray", "--seeds", "0", "--scheduler", "localhost"],
     "scheduler: expected an address such as tcp://127.0.0.1:8786"),
    (["--module", "no_such_module", "list"], "No module named 'no_such_module'"),
])
def test_bad_input_gets_a_clear_error(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sweep.main(args) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_scheduler_times_out(capsys):
    import socket
    with socket.socket() as s:                       # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    assert sweep.main(["run", "toy", "--seeds", "0", "--scheduler", f"tcp://127.0.0.1:{port}",
                       "--timeout", "2"]) == 2
    assert time.monotonic() - start < 30
    assert f"scheduler: no answer from tcp://127.0.0.1:{port} within 2 s" in \
        capsys.readouterr().err


def test_the_default_out_is_never_overwritten(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert sweep.main(["run", "toy", "--seeds", "0", "--workers", "0", "--no-progress"]) == 0
    assert sweep.main(["run", "toy", "--seeds", "1", "--workers", "0"]) == 2
    assert "--out: toy.json exists" in capsys.readouterr().err
    assert list(sweep.load(tmp_path / "toy.json").seed) == [0]


def test_list_prints_every_experiment_with_its_settings():
    done = subprocess.run([sys.executable, "-m", "loopy_edu.sweep", "list"], capture_output=True,
                          text=True, timeout=120, env=ENV)
    assert done.returncode == 0, done.stderr
    for name, exp in sweep.registry().items():
        if name in ("murray", "continual", "fa_mnist"):
            assert f"{name}: {exp.about}" in done.stdout
            for key, default in exp.defaults.items():
                assert f"    {key} = {default!r}" in done.stdout
    assert "(one of bptt, rflo, readout)" in done.stdout


def test_registering_an_experiment_checks_its_signature():
    with pytest.raises(TypeError, match="first argument is seed"):
        sweep.experiment()(lambda s, n=1: {})
    with pytest.raises(TypeError, match="setting 'n' needs a default"):
        sweep.experiment()(lambda seed, n: {})
    with pytest.raises(TypeError, match="setting 'x' needs a default"):
        sweep.experiment()(lambda seed, x=None: {})


@pytest.mark.parametrize("seeds, expected", [("0-3", [0, 1, 2, 3]), ("0, 3,5-6", [0, 3, 5, 6]),
                                             (3, [0, 1, 2]), ([4, 2], [4, 2])])
def test_parse_seeds(seeds, expected):
    assert sweep.parse_seeds(seeds) == expected


@pytest.mark.parametrize("seeds", ["", "a", "1,1", [-1], [1.5], [True], 0, "3-1"])
def test_parse_seeds_refuses(seeds):
    with pytest.raises(ValueError, match="seeds: "):
        sweep.parse_seeds(seeds)


def test_a_result_that_is_not_numbers_is_a_failed_row():
    row = sweep.run_one(lambda seed: {"x": "text"}, 0, {})
    assert row["status"] == "failed" and "result['x']: expected a number" in row["error"]
    assert sweep.run_one(lambda seed: [1], 0, {})["error"].startswith("TypeError: an experiment")
    clash = sweep.run_one(lambda seed, rho=1.0: {"rho": 2.0, "wall_s": 1.0}, 0, {"rho": 1.0})
    assert clash["status"] == "failed" and "['rho', 'wall_s']" in clash["error"]


def test_run_returns_a_frame_in_grid_then_seed_order():
    frame = sweep.run("toy", [2, 0], grid={"n": [3, 2]}, workers=2, progress=False)
    assert isinstance(frame, pd.DataFrame)
    assert list(zip(frame.n, frame.seed)) == [(3, 2), (3, 0), (2, 2), (2, 0)]
    assert [len(c) for c in frame.curve] == [3, 3, 2, 2]


def test_a_results_file_is_readable_as_any_new_file(tmp_path):
    path = sweep.save(sweep.run("toy", 1, workers=0, progress=False), tmp_path / "toy.json")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_identical_compares_the_numbers_not_where_they_ran():
    a = sweep.run("toy", "0-2", {"mode": "fail_odd"}, workers=0, progress=False)
    b = a.copy()
    b["wall_s"], b["worker"] = b.wall_s + 1, "elsewhere"
    assert sweep.identical(a, b)
    b.at[2, "curve"] = np.nextafter(b.curve[2], np.inf)          # one value, one bit
    assert not sweep.identical(a, b)
    assert not sweep.identical(a, a.iloc[:2]) and not sweep.identical(a, a.iloc[::-1])


def test_the_command_line_resumes_a_results_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = ["--module", "sweep_toys", "run", "toy", "--workers", "0", "--no-progress"]
    assert sweep.main([*base, "--seeds", "0-1", "--out", "toy.json"]) == 0
    first = sweep.load("toy.json")
    assert sweep.main([*base, "--seeds", "0-3", "--resume", "toy.json"]) == 0
    resumed = sweep.load("toy.json")                     # written back to the resumed file
    assert list(resumed.seed) == [0, 1, 2, 3]
    assert list(resumed.wall_s[:2]) == list(first.wall_s)  # kept as they were, not run again
    assert sweep.identical(resumed.iloc[:2], first)
    assert "wrote toy.json: 4 rows, 0 failed" in capsys.readouterr().out


def test_provenance_names_the_checkout_that_ran(tmp_path, monkeypatch):
    """An editable install records loopy_edu's own checkout, wherever the sweep starts; a wheel
    outside any checkout would record the researcher's project (the folder it starts in)."""
    monkeypatch.chdir(tmp_path)                         # not a git checkout
    prov = sweep.provenance("cmd")
    assert Path(prov["git_repository"]) == TESTS.parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=TESTS, capture_output=True,
                          text=True).stdout.strip()
    assert prov["git_commit"] == head


def test_a_setting_added_after_the_file_was_made_takes_its_default(tmp_path):
    """A file made before an experiment gained a setting loads, replays and resumes with that
    setting at its default (which must keep the old behaviour)."""
    path = tmp_path / "toy.json"
    sweep.run("toy", "0-1", {"scale": 2.0}, workers=0, progress=False, out=path)
    doc = json.loads(path.read_text())
    for row in doc["rows"]:
        del row["settings"]["sleep"]                      # as if "sleep" were added since
    path.write_text(json.dumps(doc))
    frame = sweep.load(path)
    assert list(frame.sleep) == [0.0, 0.0] and list(frame.scale) == [2.0, 2.0]
    assert sweep.replay(path).ok
    calls = sweep.run("toy", "0-2", {"scale": 2.0}, workers=0, progress=False, resume=path)
    assert list(calls.seed) == [0, 1, 2] and sweep.identical(calls.iloc[:2], frame)


def test_a_tree_is_clean_when_only_results_changed(tmp_path, monkeypatch):
    """Sweeps run one after another from one checkout write results/ as they go: those files
    leave the tree clean, any other change does not."""
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "old.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-q", "-m", "c")
    monkeypatch.setattr(sweep, "_repository", lambda: tmp_path)
    assert sweep.provenance("cmd")["git_clean"] is True
    (tmp_path / "results" / "old.json").unlink()                  # made again by a sweep
    (tmp_path / "results" / "new.json").write_text("{}")
    assert sweep.provenance("cmd")["git_clean"] is True
    (tmp_path / "code.py").write_text("x = 2\n")
    assert sweep.provenance("cmd")["git_clean"] is False


def test_mean_sd_and_origin_describe_a_results_file(tmp_path):
    frame = sweep.run("toy", "0-2", grid={"scale": [1.0, 3.0]}, workers=0, progress=False,
                      out=tmp_path / "toy.json")
    table = sweep.mean_sd(frame, "scale", "final")
    for scale in (1.0, 3.0):
        v = frame[frame.scale == scale].final
        assert table[scale] == f"{v.mean():.3g} ± {v.std(ddof=1):.2g}"
    text = sweep.origin(sweep.load(tmp_path / "toy.json"))
    assert text.startswith("`") and "commit " in text and "clean tree: " in text


def test_replay_skips_a_result_that_only_other_settings_have(tmp_path):
    """A file whose settings return different keys (loopy_vs_lstm's mc_k) holds NaN in the
    other rows' column; the replayed row does not return that key, and that is no difference."""
    path = tmp_path / "toy.json"
    sweep.run("toy", "0-1", {"n": 2}, workers=0, progress=False, out=path)   # no quick replay
    doc = json.loads(path.read_text())
    doc["rows"][1]["result"]["extra"] = 1.0                 # only the second row has it
    path.write_text(json.dumps(doc))
    assert sweep.replay(path).ok
    doc["rows"][0]["result"]["extra"] = 2.0                 # the replayed row claims it too
    path.write_text(json.dumps(doc))
    assert not sweep.replay(path).ok
