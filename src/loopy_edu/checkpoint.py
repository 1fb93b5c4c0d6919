"""Saving and loading models without pickle: one ``.npz`` file per model.

The file holds the model's ``params`` (as ``param/<name>`` arrays) and, as JSON text, the class
name and the constructor's arguments (:meth:`loopy_edu.model.Model.config`). Loading rebuilds
the model from a fixed list of library classes (:data:`MODELS`) and copies the arrays in after
checking their names, shapes and dtypes. ``np.load(..., allow_pickle=False)`` refuses object
arrays, so opening a file never runs code from it.
"""
from __future__ import annotations

import importlib
import json
import os
import tempfile

import numpy as np

from .model import Model

FORMAT = 1

#: The classes a checkpoint may name, and where they live. A new model joins the library by
#: being added here and to the contract test's list (ARCHITECTURE.md).
MODELS = {
    "LinearRegression": "loopy_edu.linear",
    "Perceptron": "loopy_edu.perceptron",
    "MLP": "loopy_edu.mlp",
    "RNN": "loopy_edu.rnn",
    "LSTM": "loopy_edu.lstm",
    "SynapseChain": "loopy_edu.synapses",
    "LoopyNetwork": "loopy_edu.loopy",
    "ACTCell": "loopy_edu.halting",
    "PonderCell": "loopy_edu.halting",
    "LoopedCell": "loopy_edu.halting",
    "TallSLN": "loopy_edu.sln",
    "LateralSLN": "loopy_edu.sln_lateral",
    "CriticCell": "loopy_edu.sln_lateral",
    "WideSLN": "loopy_edu.sln_wide",
    "ConvSLN": "loopy_edu.sln_conv",
}


def save(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` (a ``.npz`` file) atomically: a temporary file in the same
    folder, then a rename, so that an existing checkpoint is never left half-written.

    Parameters
    ----------
    model : Model
        One of the library's models (:data:`MODELS`).
    path : str or os.PathLike
        The file to write; an existing file there is replaced.

    Raises
    ------
    ValueError
        If ``model`` is not one of the library's models, or its ``config()`` holds values that
        JSON cannot store.
    """
    name = type(model).__name__
    if not isinstance(model, Model) or MODELS.get(name) != type(model).__module__:
        raise ValueError(f"model: expected one of the library's models {sorted(MODELS)}, "
                         f"got {name}")
    try:
        header = json.dumps({"format": FORMAT, "class": name, "config": model.config()})
    except TypeError as err:
        raise ValueError("model: its config() must hold plain values to be saved "
                         f"({err})") from None
    arrays = {f"param/{k}": np.asarray(p) for k, p in model.params.items()}
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.array(header), **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path: str | os.PathLike, backend: str | None = None) -> Model:
    """The model saved at ``path``, with equal params and config; ``backend`` overrides the
    saved one (e.g. to open a CUDA model on a machine without a GPU).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file written by :func:`save`.
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"`` instead of the saved backend; None keeps it.

    Returns
    -------
    Model
        A new model of the saved class, built from the saved config, holding the saved params.

    Raises
    ------
    ValueError
        If the file is not a checkpoint of a library model (a single array, object arrays, no
        or an unreadable header, another format or class), or its arrays do not fit the model it
        names (missing or extra keys, another shape or dtype).
    """
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError("path: expected a .npz checkpoint, got a single array in "
                         f"{os.fspath(path)!r}")
    try:
        with data as f:
            files = {k: f[k] for k in f.files}
    except ValueError as err:  # numpy's refusal of object arrays
        raise ValueError(f"path: {os.fspath(path)!r} holds object arrays, which are never "
                         f"loaded ({err})") from None
    if "header" not in files:
        raise ValueError(f"path: {os.fspath(path)!r} is not a loopy_edu checkpoint (no header)")
    try:
        header = json.loads(str(files.pop("header")))
        name, config = header["class"], dict(header["config"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"path: {os.fspath(path)!r} has an unreadable header "
                         f"({err})") from None
    if header.get("format") != FORMAT or name not in MODELS:
        raise ValueError(f"path: expected a format-{FORMAT} checkpoint of one of "
                         f"{sorted(MODELS)}, got format {header.get('format')!r} of class "
                         f"{name!r}")
    if backend is not None:
        config["backend"] = backend
    model = getattr(importlib.import_module(MODELS[name]), name)(**config)
    saved = {k.removeprefix("param/"): a for k, a in files.items() if k.startswith("param/")}
    if saved.keys() != model.params.keys() or len(saved) != len(files):
        raise ValueError(f"path: expected the arrays {sorted(model.params)} of a {name}, got "
                         f"{sorted(files)}")
    for k, p in model.params.items():
        a = saved[k]
        if a.shape != p.shape or a.dtype != p.dtype:
            raise ValueError(f"path: params[{k!r}] is a {a.dtype.name} array of shape "
                             f"{a.shape}, but this {name} needs {p.dtype.name} {p.shape}")
        p[...] = a
    return model
