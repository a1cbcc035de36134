"""``--jobs`` worker processes: one killed mid-trial, and Ctrl-C, lose nothing and say so plainly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from harness import schema
from harness.storage import open_storage, storage_url
from tests.mid_trial import kill_mid_trial

pytestmark = pytest.mark.slow


def _args(results: Path, trials: int = 16) -> list[str]:
    # a budget long enough that the spawned worker (torch import, data load) joins on a loaded machine
    return [sys.executable, "-m", "harness", "bench", "--results", str(results), "--trials", str(trials),
            "--epochs", "3", "--max-per-class", "40", "--seeds", "0,1", "--samplers", "random", "--pruners", "none",
            "--no-progress", "--jobs", "2", "--run-id", "j"]


def _running_trials(run_dir: Path) -> list[optuna.trial.FrozenTrial]:
    journal = run_dir / "optuna.journal"
    if not journal.exists():
        return []
    storage = open_storage(storage_url(None, run_dir))
    out = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if "|" in summary.study_name:
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            out += study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return out


def _check_exact_budget(run_dir: Path, budget: int = 16) -> pd.DataFrame:
    trials = pd.read_csv(run_dir / "trials.csv")
    # a random learning rate may diverge: that trial is pruned (a NaN loss), and counts as spent
    done = trials[trials["state"].isin(["complete", "pruned"])]
    assert done.groupby("cell").size().tolist() == [budget, budget]
    assert not trials.duplicated(["cell", "trial"]).any()
    return trials


def test_a_job_killed_mid_trial_is_finished_by_the_main_process(tmp_path: Path) -> None:
    budget = 60  # the main process alone takes seconds: the spawned worker joins before the end
    proc = subprocess.Popen(_args(tmp_path, budget), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def workers_pids() -> set[int]:
            return {t.user_attrs.get(schema.PROC, {}).get("pid") for t in _running_trials(tmp_path / "j")} - {None}

        def still_running() -> None:
            assert proc.poll() is None, "the run ended before its --jobs worker could be killed mid-trial"

        kill_mid_trial(workers_pids, may=lambda pid: pid != proc.pid, seconds=240, check=still_running)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    assert "worker process(es) died" in err
    trials = _check_exact_budget(tmp_path / "j", budget)
    assert (trials["state"] == "killed").sum() == 1
    cells = pd.read_csv(tmp_path / "j" / "cells.csv")
    assert cells["state"].eq("done").all()


def test_ctrl_c_with_jobs_is_one_line_exit_130_and_resumable(tmp_path: Path) -> None:
    # trials of a few tens of milliseconds: a budget long enough that the spawned worker, however
    # late it joins on a loaded machine, finds work left (the first process alone would take about
    # 15 s); the Ctrl-C goes once the worker runs a trial, so it lands mid-run with both working
    budget = 150
    # SIGINT as a terminal leaves it: a test run started in the background (`pytest &`, some CI
    # runners) ignores SIGINT, and so would the harness it starts, which would then run to its end
    proc = subprocess.Popen(_args(tmp_path, budget), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240

    def worker_runs_a_trial() -> bool:
        pids = {t.user_attrs.get(schema.PROC, {}).get("pid") for t in _running_trials(tmp_path / "j")}
        return bool(pids - {None, proc.pid})

    try:
        while time.time() < deadline and proc.poll() is None and not worker_runs_a_trial():
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before its --jobs worker ran a trial"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("harness: interrupted"), err
    # in-flight trials were told as interrupted; one a worker was creating at that instant is left
    # to its process identity, which is dead now (the next run retries it)
    from harness.workers import ProcessIdentity

    assert all(not ProcessIdentity(t.user_attrs[schema.PROC]).alive() for t in _running_trials(tmp_path / "j"))
    rerun = subprocess.run(_args(tmp_path, budget), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    trials = _check_exact_budget(tmp_path / "j", budget)
    assert set(trials["state"]) <= {"complete", "pruned", "killed", "surplus"}
