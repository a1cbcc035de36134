"""The ``slurm`` launcher: a run's workers as a Slurm job array, submitted through submitit.

::

    harness bench --launcher slurm --storage postgresql://user:pw@db-host/harness \\
        --slurm-partition gpu --slurm-array 8 --slurm-gpus-per-task 1 --slurm-time 240

Each array task runs one worker, the same one ``harness worker`` runs: it rebuilds the run's
configuration, joins the run through its storage and works until no trial is left, then exits.
The command waits with a progress bar read from the storage, then exports the tables and writes
the report; ``--detach`` returns once the array is submitted. The tasks' logs (and submitit's
pickles) are in ``results/<run-id>/workers/`` (``<job>_<task>_0_log.out`` and ``.err``): the
results folder must be on a file system the nodes share, as submitit needs anyway.

**Requeue.** A task reaching its time limit gets ``SIGUSR2`` a little before it (submitit's
``--signal``); submitit then asks the worker for a checkpoint, which is the same worker (it holds
no state: the storage does), and requeues the task, up to ``--slurm-requeues`` times. A task that
is preempted or whose node fails is requeued by Slurm itself (``--requeue``). Either way the task
runs again and joins the run again; the trial it was running is left without heartbeats and is
failed and retried by whichever worker finds it dead, so nothing is lost or counted twice.

**Refused before anything is written**, in one line each: a storage only this machine reaches (the
default journal file, SQLite), ``--jobs`` (one worker per task: give ``--slurm-array``), a machine
without ``sbatch``, and whatever ``sbatch --test-only`` rejects in the job array as it would be
submitted (an unknown partition, more memory or GPUs than a node has, a bad extra option).

The launcher watches the tasks with ``squeue`` and reads how each ended from submitit's result
files, so it needs no accounting database (``sacct``).
"""
from __future__ import annotations

import argparse
import logging
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import hookimpl
from harness.components import LaunchedWorkers, Launcher, LauncherSpec, LaunchRequest, Options
from harness.config import execution_only
from harness.errors import UsageError

__all__ = ["SlurmArray", "SlurmLauncher", "SlurmWorker", "harness_addoption", "harness_launchers"]

log = logging.getLogger(__name__)

#: How often the array's tasks are looked up with ``squeue`` while the command waits.
POLL_SECONDS = 5.0


class SlurmWorker:
    """What each array task runs: one worker of the run, until no work is left.

    submitit calls :meth:`checkpoint` when the task reaches its time limit; the same worker is
    requeued, since everything it did is in the run's storage."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)

    def __call__(self) -> str:
        import optuna

        from harness.config import RunConfig
        from harness.logs import route_library_logs
        from harness.registry import load_registry
        from harness.runner import run_worker

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        config = RunConfig.from_json(self.config)
        if config.threads is None:  # the task's CPUs, not the node's
            config.threads = int(os.environ.get("SLURM_CPUS_PER_TASK") or 0) or len(os.sched_getaffinity(0))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        route_library_logs(config.run_dir)
        run_worker(config, load_registry(config.plugins))
        return f"run {config.run_id}: this worker found no more work"

    def checkpoint(self) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SlurmWorker(self.config))


class SlurmArray(LaunchedWorkers):
    """A submitted job array, watched with ``squeue``; how each task ended is read from submitit's
    result file (none: the task was killed, cancelled or ran out of memory)."""

    def __init__(self, job_ids: list[str], log_dir: Path, partition: str | None) -> None:
        self.job_ids = job_ids
        self.array_id = job_ids[0].split("_")[0]
        self.log_dir = log_dir
        self.partition = partition
        self._squeue_failed = False

    def queued(self) -> list[str] | None:
        """The array's tasks Slurm still holds (pending, running, requeued...), or ``None`` when
        ``squeue`` did not answer (the controller restarting: ask again later)."""
        try:
            out = subprocess.run(["squeue", "--noheader", "--array", "--jobs", self.array_id, "--format", "%i %T"],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            out = subprocess.CompletedProcess([], 1, "", str(exc))
        if out.returncode != 0:
            if "invalid job id" in out.stderr.lower():  # the controller has forgotten the ended job
                return []
            if not self._squeue_failed:
                log.warning("squeue failed (%s); still waiting for Slurm job %s", out.stderr.strip(), self.array_id)
            self._squeue_failed = True
            return None
        return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.queued() == []:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(POLL_SECONDS if left is None else min(POLL_SECONDS, left))

    def stop(self) -> None:
        subprocess.run(["scancel", self.array_id], capture_output=True, timeout=60)

    def failures(self) -> list[str]:
        lines = []
        for job_id in self.job_ids:
            result = self.log_dir / f"{job_id}_0_result.pkl"
            err = f"{self.log_dir / job_id}_0_log.out and .err"
            try:
                with result.open("rb") as handle:
                    status, value = pickle.load(handle)
            except FileNotFoundError:
                lines.append(f"task {job_id} ended without a result (cancelled, killed or out of memory; logs {err})")
                continue
            except Exception as exc:  # a result file cut short
                lines.append(f"task {job_id}: unreadable result {result} ({type(exc).__name__}; logs {err})")
                continue
            if status != "success":
                last = [line for line in str(value).strip().splitlines() if line.strip()][-1:] or [str(status)]
                lines.append(f"task {job_id} failed: {last[0].strip()} (logs {err})")
        return lines

    def describe(self) -> str:
        where = f" on partition {self.partition}" if self.partition else ""
        return (f"{len(self.job_ids)} workers submitted as Slurm job array {self.array_id}{where} "
                f"(squeue -j {self.array_id}); logs in {self.log_dir}")


def _sbatch_option(text: str) -> tuple[str, str | bool]:
    """``--account=abc`` (or ``account=abc``) -> ``("account", "abc")``; ``--exclusive`` -> ``True``."""
    stripped = text.strip()
    if stripped.startswith("-") and not stripped.startswith("--"):
        raise UsageError(f"--slurm-sbatch {text!r}: give sbatch's long form (--account=abc, not -A abc)")
    name, sep, value = stripped.lstrip("-").partition("=")
    if not name or " " in name:
        raise UsageError(f"--slurm-sbatch {text!r}: expected an sbatch option such as --account=abc or --exclusive")
    return name, (value if sep else True)


class SlurmLauncher(Launcher):
    """One worker per task of a job array (see the module's docstring)."""

    remote = True

    def __init__(self, options: Options) -> None:
        def number(dest: str, least: int) -> int | None:
            value = options.get(dest)
            if value is not None and int(value) < least:
                raise UsageError(f"--{dest.replace('_', '-')} {value}: must be at least {least}")
            return None if value is None else int(value)

        self.partition: str | None = options.get("slurm_partition") or None
        self.minutes = number("slurm_time", 1) or 60
        self.gpus = number("slurm_gpus_per_task", 0) or 0
        self.cpus = number("slurm_cpus_per_task", 1)
        self.mem: str | None = options.get("slurm_mem") or None
        self.tasks = number("slurm_array", 1) or 1
        self.parallelism = number("slurm_parallelism", 1) or self.tasks
        self.requeues = number("slurm_requeues", 0)
        self.extra = dict(_sbatch_option(text) for text in options.get("slurm_sbatch") or [])
        self.setup = list(options.get("slurm_setup") or [])

    def parameters(self, run_id: str) -> dict[str, Any]:
        """The submitit parameters of the array (what :meth:`flags` says on sbatch's command line)."""
        params: dict[str, Any] = {
            "job_name": f"harness-{run_id}"[:100], "time": self.minutes, "array_parallelism": self.parallelism,
            # the USR2 that asks for a checkpoint comes this long before the limit (Slurm may send
            # it up to a minute early), leaving the worker time to be requeued
            "signal_delay_s": min(120, max(20, self.minutes * 60 // 4)),
            "additional_parameters": {"requeue": True, **self.extra},
        }
        for key, value in (("partition", self.partition), ("cpus_per_task", self.cpus), ("mem", self.mem),
                           ("gpus_per_task", self.gpus or None)):
            if value is not None:
                params[key] = value
        if self.setup:
            params["setup"] = list(self.setup)
        return params

    def flags(self) -> list[str]:
        """The job array's options as ``sbatch`` takes them on its command line."""
        flags = [f"--time={self.minutes}", f"--array=0-{self.tasks - 1}%{self.parallelism}", "--requeue"]
        for name, value in (("partition", self.partition), ("cpus-per-task", self.cpus), ("mem", self.mem),
                            ("gpus-per-task", self.gpus or None)):
            if value is not None:
                flags.append(f"--{name}={value}")
        flags += [f"--{name}" if value is True else f"--{name}={value}" for name, value in self.extra.items()]
        return flags

    def check(self, request: LaunchRequest) -> None:
        super().check(request)  # the storage: a server every node reaches
        if int(request.config.get("jobs") or 1) > 1:
            raise UsageError("--jobs is the local launcher's; with --launcher slurm each array task runs one "
                             "worker: give --slurm-array N")
        if shutil.which("sbatch") is None or shutil.which("squeue") is None:
            raise UsageError("--launcher slurm: sbatch and squeue are not on PATH; run harness bench on a Slurm "
                             "login node")
        command = ["sbatch", "--test-only", *self.flags(), "--wrap", "true"]
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            raise UsageError(f"--launcher slurm: {shlex.join(command)} did not answer: {exc}") from None
        if out.returncode != 0:
            errors = [line for line in out.stderr.splitlines() if line.strip()]
            reason = next((line for line in reversed(errors) if "error" in line.lower()), errors[-1] if errors else "")
            reason = reason.removeprefix("sbatch: ").removeprefix("error: ").strip() or f"exit code {out.returncode}"
            raise UsageError(f"--launcher slurm: sbatch refuses the job array: {reason}")

    def launch(self, request: LaunchRequest) -> SlurmArray:
        import submitit

        config = dict(request.config)
        # the tasks run in this directory (sbatch's default), on a file system the nodes share
        config["results"] = str(Path(str(config.get("results", "results"))).resolve())
        config["data_dir"] = str(Path(str(config.get("data_dir", "data"))).resolve())
        config["progress"] = False
        executor = submitit.SlurmExecutor(folder=request.log_dir, max_num_timeout=self.requeues or 0,
                                          python=shlex.quote(sys.executable))
        executor.update_parameters(**self.parameters(request.run_id))
        try:
            jobs = executor.submit_array([SlurmWorker(config) for _ in range(self.tasks)])
        except Exception as exc:  # sbatch refused what --test-only accepted (a limit changed meanwhile)
            text = str(exc).strip().splitlines()
            raise UsageError(f"--launcher slurm: sbatch failed: {text[-1] if text else type(exc).__name__}") from exc
        return SlurmArray([job.job_id for job in jobs], request.log_dir, self.partition)


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("slurm launcher (--launcher slurm)")
    execution_only(group.add_argument("--slurm-partition", default=None, metavar="NAME",
                                      help="partition of the job array (default: the cluster's default)"))
    execution_only(group.add_argument("--slurm-time", type=int, default=60, metavar="MINUTES",
                                      help="time limit per task; a task reaching it is requeued and rejoins the run "
                                           "(default 60)"))
    execution_only(group.add_argument("--slurm-gpus-per-task", type=int, default=0, metavar="N",
                                      help="GPUs per task (default 0)"))
    execution_only(group.add_argument("--slurm-cpus-per-task", type=int, default=None, metavar="N",
                                      help="CPUs per task, also the worker's torch threads (default: the cluster's)"))
    execution_only(group.add_argument("--slurm-mem", default=None, metavar="SIZE",
                                      help="memory per task as sbatch --mem takes it, e.g. 16G (default: the "
                                           "cluster's)"))
    execution_only(group.add_argument("--slurm-array", type=int, default=4, metavar="N",
                                      help="array tasks, one worker each (default 4)"))
    execution_only(group.add_argument("--slurm-parallelism", type=int, default=None, metavar="N",
                                      help="at most N tasks running at once (default: all)"))
    execution_only(group.add_argument("--slurm-requeues", type=int, default=10, metavar="N",
                                      help="how many times a task reaching its time limit is requeued (default 10)"))
    execution_only(group.add_argument("--slurm-sbatch", action="append", default=[], metavar="OPTION",
                                      help="an extra sbatch option in its long form, e.g. --slurm-sbatch=--account=abc "
                                           "or --slurm-sbatch qos=high; repeat for several"))
    execution_only(group.add_argument("--slurm-setup", action="append", default=[], metavar="COMMAND",
                                      help="a shell line each task runs before its worker, e.g. 'module load cuda'; "
                                           "repeat for several"))


@hookimpl
def harness_launchers() -> list[LauncherSpec]:
    return [LauncherSpec(name="slurm", description="a Slurm job array through submitit, one worker per task "
                                                   "(requeued on timeout and preemption)", factory=SlurmLauncher)]
