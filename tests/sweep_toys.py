"""Experiments for tests/test_sweep.py: cheap, deterministic, and able to fail or to take time.

Worker processes import this module by name (LocalCluster workers inherit sys.path; the
separate `dask worker` processes get PYTHONPATH), as they would a researcher's own module.
"""
import time

import numpy as np

from loopy_edu.sweep import experiment


@experiment(choices={"mode": ("ok", "fail_odd", "interrupt")}, quick={"n": 2},
            curves=("curve",))
def toy(seed, n=4, scale=1.0, mode="ok", sleep=0.0):
    """A random walk of n steps, deterministic given seed and settings."""
    if mode == "fail_odd" and seed % 2:
        raise RuntimeError(f"seed {seed} is odd")
    if mode == "interrupt":
        raise KeyboardInterrupt
    time.sleep(sleep)
    curve = np.cumsum(np.random.default_rng(seed).standard_normal(n) * scale)
    return {"final": curve[-1], "curve": curve}
