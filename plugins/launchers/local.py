"""The ``local`` launcher: ``--jobs`` worker processes on this machine, beside the command's own.

``harness bench --jobs N`` works in its own process and starts N - 1 more (spawned, so each loads
torch and its data afresh); all share the run's storage, the journal file by default. A process
that dies is reported by its exit code and the command finishes its cells itself. Loaded in every
run (``HARNESS_ALWAYS_LOAD``): it is ``--launcher``'s default, whatever ``--plugins`` selects.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from harness import hookimpl
from harness.components import LaunchedWorkers, Launcher, LauncherSpec, LaunchRequest, Options

__all__ = ["HARNESS_ALWAYS_LOAD", "LocalLauncher", "LocalProcesses", "harness_launchers"]

#: Loaded even when ``--plugins`` does not name it: ``--launcher`` defaults to it.
HARNESS_ALWAYS_LOAD = True


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _worker_process(config_json: Mapping[str, Any], planned: Sequence[Mapping[str, Any]]) -> None:
    """A ``--jobs`` worker process. SIGTERM (sent by the main process on Ctrl-C) ends it quietly:
    the trial in flight is told to Optuna as interrupted (retried by the next run), exit 130; the
    main process says the one line. Any other error is one line on stderr and exit 1."""
    signal.signal(signal.SIGTERM, _stop)
    try:
        import optuna

        from harness.config import RunConfig
        from harness.grid import PlannedCell
        from harness.logs import route_library_logs
        from harness.registry import load_registry
        from harness.runner import work_on_run

        config = RunConfig.from_json(dict(config_json))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        route_library_logs(config.run_dir)
        work_on_run(config, load_registry(config.plugins), [PlannedCell.from_json(dict(p)) for p in planned])
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        print(f"harness: worker process {os.getpid()} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


class LocalProcesses(LaunchedWorkers):
    def __init__(self, processes: list[BaseProcess]) -> None:
        self.processes = processes

    def wait(self, timeout: float | None = None) -> bool:
        for proc in self.processes:
            proc.join(timeout)
        return not any(proc.is_alive() for proc in self.processes)

    def stop(self) -> None:
        for proc in self.processes:
            proc.terminate()

    def failures(self) -> list[str]:
        return [f"exit code {proc.exitcode}" for proc in self.processes if proc.exitcode]

    def describe(self) -> str:
        return f"{len(self.processes) + 1} processes on this machine"


class LocalLauncher(Launcher):
    """``--jobs`` - 1 processes beside the launching command, which works too."""

    remote = False

    def launch(self, request: LaunchRequest) -> LocalProcesses:
        """The processes start with Ctrl-C ignored (inherited across the spawn), so a Ctrl-C is
        handled once, by the main process, which stops them with SIGTERM."""
        jobs = int(request.config.get("jobs") or 1)
        context = multiprocessing.get_context("spawn")
        processes: list[BaseProcess] = []
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for _ in range(1, jobs):
                proc = context.Process(target=_worker_process, args=(dict(request.config), list(request.planned)),
                                       daemon=False)
                proc.start()
                processes.append(proc)
        finally:
            signal.signal(signal.SIGINT, previous)
        return LocalProcesses(processes)


def _factory(options: Options) -> LocalLauncher:
    return LocalLauncher()


@hookimpl
def harness_launchers() -> list[LauncherSpec]:
    return [LauncherSpec(name="local", description="--jobs worker processes on this machine (default)",
                         factory=_factory)]
