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

__all__ = ["device_name", "git_commit", "run_metadata", "version_changes"]

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


def version_changes(started: dict[str, Any], registry: Registry) -> dict[str, list[str | None]]:
    """What this process runs in another version than the run's ``run.json`` (``started``) was
    written with: ``{"harness" | "plugin NAME" | "library NAME": [then, now]}``, for the harness,
    and the plugins and libraries both list (a plugin installed since, or a library an older
    harness did not list, changes nothing the run computed).

    Why: a run resumed or joined after an upgrade holds trials of both versions; a reviewer
    comparing its numbers must be able to see that, and run.json said only how it started."""
    then = {"harness": started.get("harness_version"),
            **{f"plugin {k}": v for k, v in (started.get("plugins") or {}).items()},
            **{f"library {k}": v for k, v in (started.get("libraries") or {}).items()}}
    now = {"harness": __version__, **{f"plugin {k}": v for k, v in registry.plugin_versions().items()},
           **{f"library {k}": _version(k) for k in _LIBRARIES}}
    return {key: [then[key], now[key]] for key in sorted(set(then) & set(now)) if then[key] != now[key]}
