"""The ``slurm`` launcher on a real Slurm cluster, with a real PostgreSQL server.

Needs ``HARNESS_TEST_SLURM`` (the partition ``.ci/slurm`` prints once it has started a single-node
cluster) and ``HARNESS_TEST_POSTGRES_URL`` (``.ci/postgres``); CI sets both. Each test submits real
job arrays of ``harness worker`` tasks through submitit, then hurts them the ways clusters do:

* a table grid: one task gets the time-limit signal (``SIGUSR2``: submitit checkpoints the worker and
  requeues the task itself), another is requeued by Slurm while it runs (what preemption does);
* a live grid (tiny networks on digits): one task's worker is killed with ``kill -9`` in the middle
  of a trial, another task is cancelled (``scancel``); both are then requeued.

What must hold: every requeued task runs again and joins the same run; 0 trials lost (each trial
seen complete mid-run is complete at the end, with the same values), 0 duplicated (every cell ends
with exactly its budget of counted trials, a killed trial is retried and never counted), nothing left
running, the report written, and the workers' logs under ``results/<run-id>/workers/``.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
import pytest
from harness_plugins.datasets._nb201_synthetic import write_synthetic_table
from optuna.trial import TrialState

from harness import schema
from harness.cli import main
from harness.storage import close_storage, open_storage
from harness.testing import LauncherContract
from tests.harness_tests.test_faults import snapshot
from tests.mid_trial import kill_mid_trial

PARTITION = os.environ.get("HARNESS_TEST_SLURM")
POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.slow, pytest.mark.slurm, pytest.mark.postgres,
    pytest.mark.skipif(not PARTITION, reason="HARNESS_TEST_SLURM not set (.ci/slurm starts a single-node Slurm "
                                             "and prints the partition to set it to)"),
    pytest.mark.skipif(not POSTGRES_URL, reason="HARNESS_TEST_POSTGRES_URL not set (run .ci/postgres)"),
]


class TestSlurmLaunch(LauncherContract):
    launcher_name = "slurm"
    launch_args = ["--slurm-partition", str(PARTITION), "--slurm-array", "2"]

    def launch_storage(self) -> str | None:
        return POSTGRES_URL


def _slurm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)


def _queue(array: str) -> dict[str, str]:
    """Task id -> state of the array's tasks Slurm still holds."""
    out = _slurm("squeue", "--noheader", "--array", "--jobs", array, "--format", "%i %T")
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def _until(what: str, condition: object, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _requeue(task: str, running: bool = False) -> None:
    """``scontrol requeue`` (retried while the task is still being torn down), then start it now
    rather than after Slurm's requeue delay."""
    deadline = time.monotonic() + 120
    while (out := _slurm("scontrol", "requeue", task)).returncode != 0:
        assert time.monotonic() < deadline, f"scontrol requeue {task}: {out.stderr}"
        time.sleep(1)
    _start_now(task)


def _start_now(task: str) -> None:
    _until(f"{task} pending", lambda: _queue(task.split("_")[0]).get(task) == "PENDING", 120)
    deadline = time.monotonic() + 60
    while (out := _slurm("scontrol", "update", f"JobId={task}", "StartTime=now")).returncode != 0:
        assert time.monotonic() < deadline, f"scontrol update {task} StartTime=now: {out.stderr}"
        time.sleep(1)


def _bench(tmp_path: Path, run_id: str, grid: list[str], tasks: int) -> tuple[subprocess.Popen[str], str, Path]:
    """``harness bench --launcher slurm`` in a subprocess; returns it, its job array id and its stderr file."""
    err = tmp_path / f"{run_id}.err"
    args = [sys.executable, "-m", "harness", "bench", *grid, "--launcher", "slurm", "--slurm-partition",
            str(PARTITION), "--slurm-array", str(tasks), "--storage", str(POSTGRES_URL), "--heartbeat", "2",
            "--results", str(tmp_path / "results"), "--run-id", run_id, "--reporters", "summary", "--no-progress"]
    with err.open("w") as handle:  # the child writes to its own copy
        # SIGINT as a terminal leaves it (a test run started in the background ignores it, and so
        # would the harness it starts): the Ctrl-C test sends it
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=handle, text=True, cwd=tmp_path,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    found: list[str] = []

    def submitted() -> bool:
        assert proc.poll() is None, err.read_text()
        found.extend(re.findall(r"Slurm job array (\d+)", err.read_text()))
        return bool(found)

    try:
        _until("the job array's submission", submitted, 120)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc, found[0], err


def _trials(run_id: str) -> dict[str, list[optuna.trial.FrozenTrial]]:
    assert POSTGRES_URL
    return snapshot(POSTGRES_URL, run_id)


def _complete(cells: dict[str, list[optuna.trial.FrozenTrial]]) -> dict[tuple[str, int], tuple[float, ...]]:
    return {(name, t.number): tuple(t.values) for name, trials in cells.items() for t in trials
            if t.state == TrialState.COMPLETE}


def _check_budgets(cells: dict[str, list[optuna.trial.FrozenTrial]], run_dir: Path, budget: int,
                   n_cells: int) -> tuple[dict[str, int], list[str]]:
    """Figures, and every violation of: each cell ends with exactly ``budget`` counted finished
    trials (a trial whose worker died, marked ``killed`` or failed by its heartbeat's silence, is
    retried and not counted), nothing left running, one ``trials.csv`` row per stored trial."""
    problems = [] if len(cells) == n_cells else [f"{len(cells)} cells in the storage, {n_cells} planned"]
    figures = {"killed": 0, "duplicated": 0}
    for name, trials in cells.items():
        running = [t.number for t in trials if t.state == TrialState.RUNNING]
        counted = [t for t in trials if schema.is_counted(t) and t.state != TrialState.RUNNING]
        figures["killed"] += sum(schema.is_killed(t) for t in trials)
        if running or len(counted) != budget:
            problems.append(f"{name}: {len(counted)} counted finished trials for a budget of {budget}, "
                            f"{running} left running")
    rows = pd.read_csv(run_dir / "trials.csv")
    figures["duplicated"] = int(rows.duplicated(["cell", "trial"]).sum())
    if figures["duplicated"] or len(rows) != sum(len(t) for t in cells.values()):
        problems.append(f"trials.csv: {len(rows)} rows, {figures['duplicated']} duplicated")
    states = pd.read_csv(run_dir / "cells.csv")["state"]
    if not states.eq("done").all():
        problems.append(f"cells.csv states {states.tolist()}")
    return figures, problems


def _finish(proc: subprocess.Popen[str], err: Path, run_id: str, tmp_path: Path, budget: int, n_cells: int,
            seen: dict[tuple[str, int], tuple[float, ...]]) -> tuple[dict[str, int], str]:
    """Wait for the bench, then check: exit 0, nothing seen complete lost, exact budgets, the report."""
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.read_text()[-3000:]
    cells = _trials(run_id)
    now = _complete(cells)
    lost = [key for key, values in seen.items() if now.get(key) != values]
    run_dir = tmp_path / "results" / run_id
    figures, problems = _check_budgets(cells, run_dir, budget, n_cells)
    assert lost == [] and problems == [], (lost, problems)
    assert (run_dir / "summary.md").exists() and "| random |" in out, "the report was not written"
    return figures, out


def _starts(log: Path) -> int:
    return log.read_text().count("Starting with JobEnvironment") if log.exists() else 0


def test_an_unknown_partition_fails_before_anything_is_written(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = _slurm("squeue", "--noheader", "--format", "%i").stdout
    results = tmp_path / "results"
    code = main(["bench", "--results", str(results), "--trials", "2", "--epochs", "1", "--seeds", "0", "--samplers",
                 "random", "--pruners", "none", "--no-progress", "--launcher", "slurm", "--storage", str(POSTGRES_URL),
                 "--slurm-partition", "no-such-partition", "--run-id", f"bad-{uuid.uuid4().hex[:8]}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "no-such-partition" in err and "sbatch" in err
    assert not results.exists()
    assert _slurm("squeue", "--noheader", "--format", "%i").stdout == before  # nothing submitted


def _running_tasks(array: str) -> list[str]:
    return sorted(task for task, state in _queue(array).items() if state == "RUNNING")


class _Looks:
    """Quick looks at a run's cells while it runs (one open storage, the cell studies loaded once):
    the full snapshot takes seconds on a busy machine, and a quick grid moves on meanwhile."""

    def __init__(self, run_id: str, n_cells: int) -> None:
        self.run_id, self.n_cells = run_id, n_cells
        self.storage = open_storage(str(POSTGRES_URL))
        self.studies: list[optuna.Study] = []

    def trials(self, state: TrialState) -> list[optuna.trial.FrozenTrial]:
        if len(self.studies) < self.n_cells:
            self.studies = [optuna.load_study(study_name=s.study_name, storage=self.storage)
                            for s in self.storage.get_all_studies()
                            if s.study_name.startswith(f"{self.run_id}/") and "|" in s.study_name]
        return [t for study in self.studies for t in study.get_trials(deepcopy=False, states=(state,))]

    def close(self) -> None:
        close_storage(self.storage)


def test_a_table_grid_survives_a_timeout_signal_and_a_preemption(tmp_path: Path) -> None:
    # long enough to be signalled while it runs (a grid of 4 x 150 table trials ended first on a
    # quick machine); the tasks hurt are chosen among those running at that instant, as one may
    # have finished its cells already
    budget, run_id = 600, f"slurm-table-{uuid.uuid4().hex[:8]}"
    table = write_synthetic_table(tmp_path / "nb201.csv")
    grid = ["--datasets", "nb201-cifar10", "--spaces", "nb201", "--algorithms", "random,rea", "--samplers", "random",
            "--pruners", "none", "--seeds", "0,1", "--trials", str(budget), "--table", str(table)]
    started = time.monotonic()
    proc, array, err = _bench(tmp_path, run_id, grid, tasks=3)
    looks = _Looks(run_id, n_cells=4)
    try:
        _until("3 running tasks and 20 complete trials", lambda: len(_running_tasks(array)) == 3
               and len(looks.trials(TrialState.COMPLETE)) >= 20)
        hurt: list[str] = []

        def tasks_at_work() -> list[str]:
            """The tasks whose worker runs a trial now (a task may have ended its share already)."""
            pids = {t.user_attrs[schema.PROC]["pid"] for t in looks.trials(TrialState.RUNNING)
                    if schema.PROC in t.user_attrs}
            tasks = set()
            for pid in pids:
                with contextlib.suppress(FileNotFoundError):  # its worker has ended since
                    tasks.add(_array_task(pid, array))
            return sorted(f"{array}_{task}" for task in tasks - {None} if f"{array}_{task}" not in hurt)

        def hurt_one(how: Callable[[str], bool]) -> int:
            """Hurt a task at work ``how``; the number of tasks hurt so far."""
            assert proc.poll() is None, "the grid ended before two of its tasks could be hurt"
            hurt.extend(task for task in tasks_at_work()[:1] if how(task))
            return len(hurt)

        # the time limit's warning signal: submitit checkpoints the worker and requeues the task itself
        _until("a task at work signalled", lambda: hurt_one(
            lambda task: _slurm("scancel", "--signal=USR2", task).returncode == 0) == 1, 60)
        # preemption: Slurm stops a running task and puts it back in the queue
        _until("another task at work", lambda: hurt_one(lambda task: True) == 2, 60)
        _requeue(hurt[1], running=True)
        _start_now(hurt[0])
        seen = _complete(_trials(run_id))  # after the hurts (a slow read): the grid is mid-run
        figures, _ = _finish(proc, err, run_id, tmp_path, budget, n_cells=4, seen=seen)
    finally:
        looks.close()
        _stop(proc, array)
    workers = tmp_path / "results" / run_id / "workers"
    signalled, preempted = hurt
    spared = next(f"{array}_{i}" for i in range(3) if f"{array}_{i}" not in hurt)
    assert _starts(workers / f"{signalled}_0_log.out") == 2 and _starts(workers / f"{preempted}_0_log.out") == 2
    assert "Requeued job" in (workers / f"{signalled}_0_log.out").read_text()  # submitit's own requeue
    assert _starts(workers / f"{spared}_0_log.out") == 1
    assert "died" not in err.read_text(), err.read_text()  # every task ended well in the end
    print(f"\nslurm table grid: 4x{budget} trials, 3 tasks, 1 USR2 checkpoint+requeue, 1 preemption requeue: "
          f"{figures['killed']} killed and retried, 0 lost, {figures['duplicated']} duplicated; "
          f"{time.monotonic() - started:.0f} s")


def _array_task(pid: int, array: str) -> str | None:
    """The task of job array ``array`` that process ``pid`` runs in, from its environment, or None
    (another process: a pid seen in the storage may have been reused)."""
    environ = dict(v.split(b"=", 1) for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in v)
    if environ.get(b"SLURM_ARRAY_JOB_ID", b"").decode() != array:
        return None
    return environ[b"SLURM_ARRAY_TASK_ID"].decode()


def _stop(proc: subprocess.Popen[str], array: str) -> None:
    """After a failure: end the bench and its array, and close the bench's pipe (a pipe left to the
    garbage collector warns in whichever test runs then)."""
    if proc.poll() is None:
        proc.kill()
        _slurm("scancel", array)
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def test_a_live_grid_survives_kill_9_and_scancel_then_requeue(tmp_path: Path) -> None:
    # trials of about half a second, 2 x 40 of them: the grid runs long enough to be hurt mid-run
    budget, run_id = 40, f"slurm-live-{uuid.uuid4().hex[:8]}"
    grid = ["--datasets", "digits", "--spaces", "convfc", "--algorithms", "sampler", "--samplers", "random",
            "--pruners", "none", "--seeds", "0,1", "--trials", str(budget), "--epochs", "8", "--max-per-class", "40"]
    started = time.monotonic()
    proc, array, err = _bench(tmp_path, run_id, grid, tasks=3)
    try:
        _until("3 running tasks", lambda: len(_running_tasks(array)) == 3, 300)
        seen = _complete(_trials(run_id))
        tasks: dict[int, str] = {}
        looks = _Looks(run_id, n_cells=2)  # each look is quick: trials are short

        def workers_pids() -> set[int]:
            return {t.user_attrs[schema.PROC]["pid"] for t in looks.trials(TrialState.RUNNING)
                    if schema.PROC in t.user_attrs}

        def of_this_array(pid: int) -> bool:
            task = _array_task(pid, array)
            tasks.update({pid: task} if task is not None else {})
            return task is not None

        def still_running() -> None:
            assert proc.poll() is None, "the grid ended before a worker could be killed mid-trial"

        try:
            victim = tasks[kill_mid_trial(workers_pids, may=of_this_array, check=still_running)]
        finally:
            looks.close()
        cancelled = next(str(i) for i in range(3) if str(i) != victim)
        assert _slurm("scancel", f"{array}_{cancelled}").returncode == 0
        _until("the killed and the cancelled tasks to end", lambda: not {f"{array}_{victim}", f"{array}_{cancelled}"}
               & {task for task, state in _queue(array).items() if state == "RUNNING"}, 120)
        for task in (victim, cancelled):
            _requeue(f"{array}_{task}")
        figures, _ = _finish(proc, err, run_id, tmp_path, budget, n_cells=2, seen=seen)
    finally:
        _stop(proc, array)
    workers = tmp_path / "results" / run_id / "workers"
    for task in (victim, cancelled):
        assert _starts(workers / f"{array}_{task}_0_log.out") == 2, f"task {task} did not run again"
    trials = pd.read_csv(tmp_path / "results" / run_id / "trials.csv")
    assert (trials["state"] == "killed").sum() >= 1  # the kill -9 landed mid-trial: that trial was retried
    print(f"\nslurm live grid: 2x{budget} trials on digits, 3 tasks, kill -9 of task {victim}'s worker and scancel "
          f"of task {cancelled}, both requeued: {figures['killed']} killed and retried, 0 lost, "
          f"{figures['duplicated']} duplicated; {time.monotonic() - started:.0f} s")


def _table_grid(tmp_path: Path, budget: int) -> list[str]:
    table = write_synthetic_table(tmp_path / "nb201.csv")
    return ["--datasets", "nb201-cifar10", "--spaces", "nb201", "--algorithms", "random", "--samplers", "random",
            "--pruners", "none", "--seeds", "0,1", "--trials", str(budget), "--table", str(table)]


def test_detach_returns_at_once_and_the_printed_report_command_finishes_the_run(tmp_path: Path) -> None:
    budget, run_id = 30, f"slurm-detach-{uuid.uuid4().hex[:8]}"
    proc, array, err = _bench(tmp_path, run_id, [*_table_grid(tmp_path, budget), "--detach"], tasks=2)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        _stop(proc, array)
    assert proc.returncode == 0, err.read_text()
    command = out.strip().splitlines()[-1]
    assert command == f"harness report {run_id} --results {tmp_path / 'results'}"
    assert not (tmp_path / "results" / run_id / "trials.csv").exists()  # nothing waited for, nothing exported
    _until("the detached array to end", lambda: not _queue(array), 300)
    report = subprocess.run([sys.executable, "-m", *command.split()], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, check=False)
    assert report.returncode == 0, report.stderr
    _, problems = _check_budgets(_trials(run_id), tmp_path / "results" / run_id, budget, n_cells=2)
    assert problems == [] and (tmp_path / "results" / run_id / "summary.md").exists()


def test_ctrl_c_while_waiting_cancels_the_array_in_one_line(tmp_path: Path) -> None:
    run_id = f"slurm-ctrl-c-{uuid.uuid4().hex[:8]}"
    proc, array, err = _bench(tmp_path, run_id, _table_grid(tmp_path, 500), tasks=2)
    try:
        _until("the tasks to run", lambda: list(_queue(array).values()).count("RUNNING") == 2, 120)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        _stop(proc, array)
    assert proc.returncode == 130, err.read_text()
    assert "interrupted" in err.read_text().strip().splitlines()[-1]
    _until("the array to be cancelled", lambda: not _queue(array), 60)
