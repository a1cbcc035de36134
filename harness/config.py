"""A run's configuration: the grid's axes, the budgets, and every option, with a stable run id.

The run id is a hash of everything that changes results (axes, budgets, split, pinned
hyperparameters, plugin options) and none of what only changes how the run executes (device,
jobs, launcher, storage, output folder), so the same command resumes the same run, and so does the same
command on another machine joining through a shared storage.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.runfiles import check_run_id
from harness.storage import check_storage_url

__all__ = ["EXECUTION_ONLY", "RunConfig", "absolute_storage_url", "execution_only", "is_execution_only"]

#: Options that change how a run executes, not what it computes: excluded from the run id.
EXECUTION_ONLY = frozenset({
    "device", "jobs", "storage", "results", "run_id", "progress", "plugins", "command", "reporters",
    "compile", "data_dir", "download", "func", "threads", "fix", "verbose", "counted_options",
    "heartbeat", "launcher", "detach",
})

_EXECUTION_ONLY_FLAG = "harness_execution_only"


def execution_only(action: argparse.Action) -> argparse.Action:
    """Mark a plugin option as one that does not change what a run computes (a reporter's format,
    a file check, a log level), in ``harness_addoption``::

        execution_only(group.add_argument("--latex-style", default="booktabs"))

    It stays out of the run id, so changing it never starts a new run: the same command resumes
    the same studies. Every option a reporter reads should be marked. ``harness report RUN
    --latex-style plain`` re-renders with another value without touching the studies."""
    setattr(action, _EXECUTION_ONLY_FLAG, True)
    return action


def is_execution_only(action: argparse.Action) -> bool:
    """Whether :func:`execution_only` marked ``action``."""
    return bool(getattr(action, _EXECUTION_ONLY_FLAG, False))


def absolute_storage_url(url: str | None) -> str | None:
    """File-backed storage URLs with absolute paths, so ``harness report`` or a worker started in
    another directory opens the same file instead of creating an empty one."""
    if url is None:
        return None
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
    if url.startswith("journal:"):
        return "journal:" + str(Path(url.removeprefix("journal:")).resolve())
    return url


@dataclass
class RunConfig:
    datasets: list[str]
    spaces: list[str]
    algorithms: list[str]
    samplers: list[str]
    pruners: list[str]
    seeds: list[int]
    trials: int
    epochs: int
    timeout: float | None = None
    #: search-space generators (the ``generator`` axis); ``manual`` is the base space itself
    generators: list[str] = field(default_factory=lambda: ["manual"])
    #: the image dataset generators learn from when a cell's dataset is a table (``None``: the
    #: cell's own dataset)
    generator_data: str | None = None
    #: the image dataset one-shot search algorithms (those whose ``trains_on_images``) train their
    #: supernet on when a cell's dataset is a table; the derived architecture is scored on the table
    search_data: str | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    max_per_class: int | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    jobs: int = 1
    #: CPU threads per worker process (``None``: cores // jobs).
    threads: int | None = None
    storage: str | None = None
    results: str = "results"
    run_id: str | None = None
    reporters: list[str] = field(default_factory=lambda: ["summary", "importance"])
    compile: bool = False
    deterministic: bool = False
    data_dir: str = "data"
    download: bool = False
    progress: bool = True
    plugins: list[str] | None = None
    #: Heartbeat interval (seconds) on storages that support Optuna's heartbeat (RDB); a trial
    #: with no beat for 3 intervals is failed and retried by any worker.
    heartbeat: int = 10
    #: Where the run's workers run (a launcher component: ``local``, ``slurm``...).
    launcher: str = "local"
    #: Return once a remote launcher's workers are started, without waiting for them.
    detach: bool = False
    #: Every parsed option, including those plugins add (for component factories).
    options: dict[str, Any] = field(default_factory=dict)
    #: The plugin options that define the run (those of the plugins the grid uses); ``None``: all.
    counted_options: list[str] | None = None

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise UsageError(f"--trials {self.trials}: must be at least 0 (0: until --timeout)")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise UsageError(f"--timeout {self.timeout}: must be a positive number of seconds")
        if self.trials < 1 and self.timeout is None:
            raise UsageError("--trials must be at least 1 (or give --timeout)")
        if self.epochs < 1:
            raise UsageError("--epochs must be at least 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise UsageError("--val-fraction must lie strictly between 0 and 1")
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        if self.heartbeat <= 0:
            raise UsageError("--heartbeat must be positive")
        for axis in ("datasets", "generators", "spaces", "algorithms", "samplers", "pruners", "seeds"):
            if not getattr(self, axis):
                raise UsageError(f"--{axis} is empty")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise UsageError("--max-per-class must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise UsageError("--threads must be at least 1")
        if not 0 <= self.split_seed < 2**32:
            raise UsageError(f"--split-seed {self.split_seed}: must lie in 0..{2**32 - 1}")
        bad_seeds = [s for s in self.seeds if not 0 <= s < 2**32]
        if bad_seeds:
            raise UsageError(f"--seeds: seed {bad_seeds[0]} must lie in 0..{2**32 - 1}")
        if self.storage is not None:
            check_storage_url(self.storage)
        self.storage = absolute_storage_url(self.storage)
        if self.run_id is None:
            self.run_id = self.default_run_id()
        check_run_id(self.run_id)

    def identity(self) -> dict[str, Any]:
        """The part of the config that defines what the run computes."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in EXECUTION_ONLY | {"options"}}
        if data.get("search_data") is None:  # added later: runs without it keep their run ids
            data.pop("search_data", None)
        data["options"] = {k: v for k, v in sorted(self.options.items()) if k not in EXECUTION_ONLY
                           and k not in data and (self.counted_options is None or k in self.counted_options)}
        return data

    def default_run_id(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()
        return f"{'+'.join(self.datasets)}-{digest[:10]}"

    @property
    def run_dir(self) -> Path:
        return Path(self.results) / str(self.run_id)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
