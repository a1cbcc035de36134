"""Reading the pickled batches CIFAR-100 and ImageNet16 ship as, safely and with one-line errors.

Why a restricted unpickler: a pickle can run any code while it loads, and dataset files come from
the internet or a shared disk. These datasets only ever hold dicts, lists, strings, numbers and
numpy arrays, so we allow just the few globals numpy's array pickling needs (for both the
``numpy.core`` names in the 2009-era Python 2 files and the ``numpy._core`` names numpy 2 writes);
anything else is reported as a corrupt file instead of being executed.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from harness.errors import DataError

__all__ = ["load_pickle", "require_file"]

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def require_file(path: Path, fix: str) -> None:
    """Raise :class:`DataError` naming ``path`` and ``fix`` unless it is a non-empty file."""
    if not path.is_file():
        raise DataError(f"missing dataset file {path}; {fix}")
    if path.stat().st_size == 0:
        raise DataError(f"empty dataset file {path}; {fix}")


def load_pickle(path: Path, fix: str, required_keys: tuple[str, ...]) -> dict[str, Any]:
    """Load the dict pickled in ``path`` (latin-1 for Python 2 pickles, as the datasets' own
    readers do), checking it holds ``required_keys``. Every failure is a one-line
    :class:`DataError` naming the file and ``fix``."""
    require_file(path, fix)
    try:
        with path.open("rb") as f:
            entry = _DataUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, UnicodeDecodeError) as exc:
        # EOFError / "truncated" errors are what a partial download looks like
        raise DataError(f"truncated or corrupt pickle {path} ({type(exc).__name__}: {exc}); {fix}") from exc
    if not isinstance(entry, dict):
        raise DataError(f"corrupt pickle {path}: expected a dict, found {type(entry).__name__}; {fix}")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    missing = [k for k in required_keys if k not in entry]
    if missing:
        raise DataError(f"corrupt pickle {path}: missing key(s) {', '.join(missing)}; {fix}")
    return entry
