"""Keep large freed buffers inside the process: glibc's malloc otherwise returns every buffer of
32 MiB or more to the kernel on ``free`` and maps it fresh, zero-filled, on the next ``malloc``.

Why: a CPU training step allocates and frees the same activation and gradient buffers every step.
With 64 x 64 images, batch 128 and 128 filters one buffer is ~270 MB, above glibc's mmap threshold,
so each step pays for ``munmap``/``mmap`` and one page fault per 4 KiB page touched: millions of
faults per epoch and 17-40 % of the CPU time spent in the kernel. Measured with
``benchmarks/bench_cpu_training.py`` (64 px, batch 128, 2 threads): 168k page faults per step and 29
% system time plain, ~2k and 0.5 % with this setting, 1.9x the images/s, as tcmalloc. PyTorch's CPU
performance guide recommends an allocator that caches (tcmalloc or jemalloc, preloaded); glibc does
the same when its thresholds are raised, from inside the process, with ``mallopt``
(``M_MMAP_THRESHOLD``: buffers below it come from the heap and are reused; ``M_TRIM_THRESHOLD``:
free memory at the heap's top is kept up to it). That needs no package and no preloading, so every
process that trains applies it at start (:func:`harness.runner._set_threads` calls :func:`configure`
in the main ``harness bench`` process, in each ``--jobs`` worker and in ``harness worker``), and
``run.json`` records the setting in force.

The cost is memory held, not returned: up to :data:`THRESHOLD` of free heap per malloc arena after
the largest step, which a training process reuses on its next step anyway. Blocks above it still
use ``mmap`` (and thread arenas fall back to ``mmap`` for blocks larger than their 64 MiB heaps;
in a whole trial no thread allocates such blocks: ``M_ARENA_MAX=1`` changed neither its faults nor
its kernel time, nor did a larger ``M_TOP_PAD``, so neither is set). What a trial's kernel time
is left with is first touch of the memory it needs (``bench_cpu_training.py --trial``).

- A preloaded tcmalloc or jemalloc (``LD_PRELOAD``) already caches: left alone, and recorded.
- Not glibc (macOS, Windows, musl): no ``mallopt`` with these meanings; nothing is done, and the
  reason is recorded.
- ``HARNESS_ALLOCATOR=plain`` leaves glibc as it is (to measure the difference, as the benchmark
  does).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any

from harness.errors import UsageError

__all__ = ["ENV", "THRESHOLD", "configure", "current"]

#: ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` (bytes): 1 GiB, above any single activation buffer
#: of the CPU workloads measured (~270 MB), far below the machine's memory.
THRESHOLD = 1 << 30
ENV = "HARNESS_ALLOCATOR"
_M_TRIM_THRESHOLD = -1  # glibc's <malloc.h> parameter numbers
_M_MMAP_THRESHOLD = -3
_CACHING = ("tcmalloc", "jemalloc")

_setting: dict[str, Any] | None = None


def current() -> dict[str, Any] | None:
    """The setting :func:`configure` applied in this process, or ``None`` before it ran."""
    return None if _setting is None else dict(_setting)


def configure() -> dict[str, Any]:
    """Apply the harness's allocator setting once per process (later calls change nothing) and
    return it: ``{"allocator": ..., "mallopt": {...} or None, "reason": ...}``."""
    global _setting
    if _setting is None:
        _setting = _apply(os.environ.get(ENV, ""), _preloaded(), _glibc())
    return dict(_setting)


def _preloaded() -> str | None:
    """A caching allocator loaded into this process (normally through ``LD_PRELOAD``)."""
    names = os.environ.get("LD_PRELOAD", "")
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            names += maps.read()
    except OSError:
        pass
    return next((name for name in _CACHING if f"lib{name}" in names), None)


def _glibc() -> Any:
    """glibc's ``mallopt``-capable C library, or ``None`` on any other platform."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # musl and others: no gnu_get_libc_version
        return None
    return libc


def _apply(choice: str, preloaded: str | None, libc: Any) -> dict[str, Any]:
    if choice not in ("", "harness", "plain"):
        raise UsageError(f"{ENV}={choice!r}: expected 'harness' (the default) or 'plain'")
    if preloaded:
        return {"allocator": preloaded, "mallopt": None, "reason": f"{preloaded} is preloaded: it caches already"}
    if libc is None:
        return {"allocator": "system", "mallopt": None,
                "reason": f"not glibc ({sys.platform}): mallopt thresholds not available, allocator left as is"}
    version = libc.gnu_get_libc_version().decode()
    if choice == "plain":
        return {"allocator": f"glibc {version}", "mallopt": None, "reason": f"{ENV}=plain"}
    applied = {name: THRESHOLD for name, param in (("M_MMAP_THRESHOLD", _M_MMAP_THRESHOLD),
                                                   ("M_TRIM_THRESHOLD", _M_TRIM_THRESHOLD))
               if libc.mallopt(param, THRESHOLD) == 1}
    reason = "large buffers are reused instead of returned to the kernel after each step"
    if len(applied) < 2:
        reason = f"mallopt refused {2 - len(applied)} of the 2 thresholds (glibc {version})"
    return {"allocator": f"glibc {version}", "mallopt": applied or None, "reason": reason}
