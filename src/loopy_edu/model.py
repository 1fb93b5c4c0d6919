"""What every model in the library shares: its constructor's arguments as data.

The contract (ARCHITECTURE.md, and ``tests/test_contract.py``, which checks it for every model)
is

- ``params``: a dict of arrays, the model's whole learned state;
- ``config()``: the constructor's arguments as plain values, so that ``type(m)(**m.config())``
  builds the same architecture and :mod:`loopy_edu.checkpoint` can save a model without pickle;
- ``seed``, ``dtype`` and ``backend`` constructor arguments, and errors that name the argument.
"""
from __future__ import annotations

from typing import Any


class Model:
    """Base class: ``repr`` and checkpoints both come from :meth:`config`."""

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, as JSON-friendly values (numbers, strings, lists, None).

        Returns
        -------
        dict[str, object]
            Keyword arguments such that ``type(self)(**self.config())`` builds the same
            architecture.
        """
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
