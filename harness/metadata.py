"""Run metadata: enough to reproduce and to trust a run (``results/<run-id>/run.json``)."""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import HOOKSPEC_VERSION, __version__
from harness.allocator import configure as configure_allocator
from harness.config import RunConfig
from harness.registry import Registry

__all__ = ["device_name", "git_commit", "run_metadata"]

_LIBRARIES = ("torch", "torchvision", "optuna", "pluggy", "numpy", "pandas", "scikit-learn", "seaborn")


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the checkout holding ``path`` (the harness source by default), if any."""
    where = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_metadata(config: RunConfig, registry: Registry) -> dict[str, Any]:
    from harness.device import resolve_device

    device = resolve_device(config.device)
    return {
        "run_id": config.run_id,
        "created": _dt.datetime.now(_dt.UTC).isoformat(),
        "argv": sys.argv,
        "config": config.to_json(),
        "harness_version": __version__,
        "hookspec_version": HOOKSPEC_VERSION,
        "plugins": registry.plugin_versions(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "python": sys.version.split()[0],
        "host": socket.gethostname(),
        "device": device,
        "device_name": device_name(device),
        "git_commit": git_commit(),
        "allocator": configure_allocator(),  # in force in every process of the run (applied at start)
        "plugins_metadata": registry.run_metadata(config.to_json()),
    }
