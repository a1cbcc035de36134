"""Launchers: where a run's workers run.

A run has no scheduler of its own: every worker walks the same cells and asks the run's Optuna
storage for trials until each cell's budget is spent (see :mod:`harness.runner`). A launcher only
decides where those workers run and watches them: ``local`` starts ``--jobs`` processes on this
machine beside the command's own, ``slurm`` submits a job array whose tasks each run one worker
(``harness worker``) on the cluster's nodes. A Kubernetes or Ray launcher is the same shape: start
N processes somewhere that each join the run, tell when they have all ended and which of them died.

The contract, in order of calls (by ``harness bench``, once per command):

1. :meth:`Launcher.check` -- before anything is written (no run folder, no study, no job): refuse
   what can never work (a storage the workers cannot reach, an option the scheduler rejects) with
   a one-line :class:`harness.errors.UsageError`.
2. :meth:`Launcher.launch` -- after the run folder and the run's storage exist: start the workers
   and return a :class:`LaunchedWorkers` handle at once, without waiting for them.
3. :meth:`LaunchedWorkers.wait` (repeatedly, a few seconds at a time, so the command can show
   progress), :meth:`LaunchedWorkers.stop` on Ctrl-C, then :meth:`LaunchedWorkers.failures`.

A worker never needs the launching command afterwards: it rebuilds the run's configuration from
:attr:`LaunchRequest.config` (``harness.config.RunConfig.from_json``) and joins the run through its
storage (``harness.runner.run_worker``). So a worker that is killed and started again (a
preempted Slurm task requeued) simply joins again; the trial it was running is failed and retried
by whichever worker finds it dead (heartbeats on RDB storages).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.components.base import Options

__all__ = ["LaunchRequest", "LaunchedWorkers", "Launcher", "refuse_local_storage"]


@dataclass(frozen=True)
class LaunchRequest:
    """The run a launcher's workers join."""

    #: the launcher's name, as given with ``--launcher`` (for messages)
    launcher: str
    run_id: str
    #: the run's folder (absolute): ``results/<run-id>/``, holding ``run.json``
    run_dir: Path
    #: the URL of the run's Optuna storage, as every worker must open it
    storage: str
    #: the run's configuration as JSON (``RunConfig.to_json()``), every option included
    config: Mapping[str, Any]
    #: the planned cells as JSON (``PlannedCell.to_json()``), ``n/a`` ones included
    planned: Sequence[Mapping[str, Any]]
    #: every parsed option, plugin options included (a launcher's own settings are among them)
    options: Options

    @property
    def log_dir(self) -> Path:
        """Where the workers' logs go: ``results/<run-id>/workers/``."""
        return self.run_dir / "workers"


class LaunchedWorkers(ABC):
    """The workers one :meth:`Launcher.launch` started, as the launching command watches them."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every worker has ended, or ``timeout`` seconds (``None``: no limit); whether
        they all have. A worker that will run again (a requeued Slurm task) has not ended."""

    @abstractmethod
    def stop(self) -> None:
        """Ask every worker to stop (the command was interrupted); return without waiting. A
        stopped worker leaves its trial in flight to be retried by the next run."""

    @abstractmethod
    def failures(self) -> list[str]:
        """After :meth:`wait` returned ``True``: one short line per worker that ended badly
        (killed, failed, cancelled), saying where its log is when there is one; ``[]`` if none did."""

    def describe(self) -> str:
        """Where the workers run, in a few words, for the terminal (a job id to watch them by)."""
        return type(self).__name__


class Launcher(ABC):
    """Puts a run's workers where they run (see the module's docstring for the order of calls)."""

    #: The workers may run on other machines, apart from the launching command: then the run's
    #: storage must be a database server they all reach (a journal file or SQLite on this
    #: machine's disk is refused, see :meth:`check`), the command does no trial itself but waits
    #: for them with a progress bar, and ``--detach`` may leave them running. ``False``: workers
    #: beside the command's own process, on this machine, which the command joins and outlives.
    remote: ClassVar[bool] = False

    def check(self, request: LaunchRequest) -> None:
        """Raise :class:`harness.errors.UsageError` (one line naming the culprit and the fix) for
        a launch that cannot work, before anything is written. The default refuses, for a
        :attr:`remote` launcher, a storage only this machine reaches."""
        if self.remote:
            refuse_local_storage(request.storage, request.launcher)

    @abstractmethod
    def launch(self, request: LaunchRequest) -> LaunchedWorkers:
        """Start the workers and return at once. Each joins the run described by ``request``."""


def refuse_local_storage(url: str, launcher: str) -> None:
    """One line saying why workers on other machines cannot share ``url``: a journal file (its
    lock and its dead-worker check are this machine's; it has no heartbeat) or SQLite (its locks
    do not hold over a network file system)."""
    from harness.errors import UsageError

    dialect = url.split(":", 1)[0].split("+", 1)[0].lower()
    if url.startswith("journal:"):
        raise UsageError(f"--launcher {launcher}: the run's storage is a journal file ({url.removeprefix('journal:')}) "
                         f"that only this machine can share safely (no heartbeat, local file lock); give "
                         f"--storage postgresql://user:password@host/db on a server the workers reach")
    if dialect == "sqlite":
        raise UsageError(f"--launcher {launcher}: --storage {url} is SQLite, whose file locks do not hold across "
                         f"machines; give --storage postgresql://user:password@host/db on a server the workers reach")
