"""Choosing the device trials train on, and how many CPU threads torch uses in this process."""
from __future__ import annotations

import os
import sys

from harness.errors import UsageError

__all__ = ["limit_threads", "resolve_device"]

#: The variable torch's OpenMP runtime reads, once, when torch is first imported.
THREADS_ENV = "OMP_NUM_THREADS"


def limit_threads(threads: int) -> None:
    """Let torch use ``threads`` intra-op threads in this process, without importing it.

    Why not always ``torch.set_num_threads``: importing torch takes 1-2 s, and a worker process
    on a benchmark table (a lookup per trial, no tensor) never needs it; ``--jobs`` pays that
    start-up once per process, and on a table the whole cell can take less. So when torch is not
    imported yet, ``OMP_NUM_THREADS`` is set instead: torch reads it when it is first imported
    (by a training evaluator, a one-shot search, a neural predictor, any plugin), to the same
    effect. It overrides a value the user exported, as ``set_num_threads`` would: ``--threads``
    is the option that chooses."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ[THREADS_ENV] = str(threads)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cuda[:N]`` must exist. (``cpu``
    is answered without importing torch.)"""
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device is available here (use --device cpu or auto)")
        try:
            index = int(device.partition(":")[2] or 0)
        except ValueError:
            raise UsageError(f"--device {device!r}: expected cuda or cuda:N") from None
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    if device != "cpu":
        raise UsageError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    return device
