"""Fault suite: ``kill -9`` at random points, then resume; concurrent workers on PostgreSQL.

What must hold (the storage is the source of truth):

* **0 trials lost**: a trial seen complete after any kill is still complete, with the same values,
  at the end;
* **0 duplicated trials**: every cell ends with exactly ``--trials`` counted finished trials (a
  trial whose worker was killed is marked ``killed`` and retried, never counted twice), no trial is
  left running, and ``trials.csv`` has one row per trial;
* **0 duplicated configurations** (concurrent workers): no two counted trials of a cell evaluate
  the same hyperparameters and architecture.

The runs use the NAS-Bench-201 table (a generated one) so that trials take milliseconds and the
kills land anywhere in the ask / propose / evaluate / tell cycle; the concurrent run with
hyperparameters trains tiny models on ``digits``. Kill points are drawn by a seeded generator as
trial counts in the storage (plus a random delay), so a failure can be replayed. The figures are
printed (``pytest -s``).
"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest
from harness_plugins.datasets._nb201_synthetic import write_synthetic_table
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

KILLS = 10
TRIALS = 40
POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_table(tmp_path_factory.mktemp("faults") / "nb201.csv")


def harness(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def tabular_args(table: Path, run_id: str, trials: int, algorithms: str = "random,sampler") -> list[str]:
    return ["--datasets", "nb201-cifar10", "--spaces", "nb201", "--algorithms", algorithms, "--samplers", "random",
            "--pruners", "none", "--seeds", "0", "--trials", str(trials), "--table", str(table),
            "--run-id", run_id, "--no-progress", "--reporters", "summary"]


def trials_created(url: str) -> int:
    """How many trials the storage holds, read without Optuna (cheap enough to poll)."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        return path.read_bytes().count(b'"op_code":4,') if path.exists() else 0
    path = url.removeprefix("sqlite:///")
    if not Path(path).exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM trials").fetchone()[0])
    except sqlite3.OperationalError:  # schema not created yet, or locked for a moment
        return 0


def snapshot(url: str, run_id: str) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Every trial of each cell of the run, as the storage holds it now."""
    from harness.storage import close_storage, open_storage

    storage = open_storage(url)
    try:
        # cell studies only: their keys hold "|" (the run's workers and claims studies do not)
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
                 if s.study_name.startswith(f"{run_id}/") and "|" in s.study_name]
        return {name: optuna.load_study(study_name=name, storage=storage).get_trials() for name in names}
    finally:
        close_storage(storage)


def counted(t: optuna.trial.FrozenTrial) -> bool:
    return not t.user_attrs.get("killed") and not t.user_attrs.get("surplus")


def check_final(cells: dict[str, list[optuna.trial.FrozenTrial]], run_dir: Path, budget: int,
                n_cells: int) -> tuple[dict[str, int], list[str]]:
    """The figures, and every violation of: exact budgets, nothing left running, ``trials.csv`` and
    ``cells.csv`` in agreement with the storage (asserted by the caller after printing)."""
    figures: Counter[str] = Counter()
    problems = [] if len(cells) == n_cells else [f"{len(cells)} cells in the storage, {n_cells} planned"]
    for name, trials in cells.items():
        mine = [t for t in trials if counted(t)]
        running = [t.number for t in mine if t.state not in FINISHED]
        if running:
            problems.append(f"{name}: trial(s) {running} left running (user attrs of the first: "
                            f"{next(t.user_attrs for t in mine if t.number == running[0])})")
        if len(mine) - len(running) != budget:
            problems.append(f"{name}: {len(mine) - len(running)} finished counted trials for a budget of {budget}")
        if len({t.number for t in trials}) != len(trials):
            problems.append(f"{name}: a trial number appears twice")
        figures["killed"] += sum(1 for t in trials if t.user_attrs.get("killed"))
        figures["surplus"] += sum(1 for t in trials if t.user_attrs.get("surplus"))
        figures["complete"] += sum(1 for t in mine if t.state == TrialState.COMPLETE)
        figures["running"] += len(running)
    rows = pd.read_csv(run_dir / "trials.csv")
    figures["duplicated"] = int(rows.duplicated(["cell", "trial"]).sum())
    if figures["duplicated"] or len(rows) != sum(len(t) for t in cells.values()):
        problems.append(f"trials.csv has {len(rows)} rows ({figures['duplicated']} duplicated) for "
                        f"{sum(len(t) for t in cells.values())} trials")
    cells_csv = pd.read_csv(run_dir / "cells.csv")
    finished = cells_csv["trials_complete"] + cells_csv["trials_pruned"] + cells_csv["trials_failed"]
    if not ((cells_csv["state"] == "done") & (finished == budget)).all():
        problems.append(f"cells.csv: {cells_csv[['state', 'trials_complete', 'trials_failed']].to_dict('records')}")
    return dict(figures), problems


@pytest.mark.parametrize("backend", ["journal", "sqlite"])
def test_kill_9_at_random_points_then_resume(tmp_path: Path, table: Path, backend: str) -> None:
    rng = random.Random(9)
    run_id = f"kill-{backend}-{uuid.uuid4().hex[:6]}"
    results = tmp_path / "results"
    url = (f"journal:{(results / run_id / 'optuna.journal').resolve()}" if backend == "journal"
           else f"sqlite:///{tmp_path / 'runs.db'}")
    args = [*tabular_args(table, run_id, TRIALS), "--results", str(results)]
    if backend == "sqlite":
        args += ["--storage", url]
    n_cells = 2
    targets = sorted(rng.sample(range(2, n_cells * TRIALS - 4), KILLS))
    seen_complete: dict[tuple[str, int], tuple[float, ...]] = {}
    landed = 0
    for target in targets:
        before = trials_created(url)
        proc = subprocess.Popen(harness("bench", *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while proc.poll() is None and trials_created(url) < max(target, before + 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            landed += 1
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        assert proc.returncode in (-signal.SIGKILL, 0), err.decode()[-2000:]
        cells = snapshot(url, run_id)
        for name, trials in cells.items():  # nothing seen complete is ever lost or changed
            for t in trials:
                key = (name, t.number)
                if key in seen_complete:
                    assert t.state == TrialState.COMPLETE and tuple(t.values) == seen_complete[key], key
                elif t.state == TrialState.COMPLETE:
                    seen_complete[key] = tuple(t.values)
    started = time.monotonic()
    final = subprocess.run(harness("bench", *args), capture_output=True, text=True, timeout=600, check=False)
    resume_seconds = time.monotonic() - started
    assert final.returncode == 0, final.stderr[-3000:]
    cells = snapshot(url, run_id)
    lost = [key for key, values in seen_complete.items()
            if not any(t.number == key[1] and t.state == TrialState.COMPLETE and tuple(t.values) == values
                       for t in cells.get(key[0], []))]
    figures, problems = check_final(cells, results / run_id, TRIALS, n_cells)
    print(f"\n{backend}: {KILLS} kills ({landed} while running), {figures['killed']} trials killed mid-trial "
          f"and retried, {len(lost)} lost, {figures['duplicated']} duplicated, {figures['running']} left running, "
          f"{figures['complete']} complete of {n_cells}x{TRIALS}; final resume {resume_seconds:.1f} s")
    assert lost == []
    assert problems == []
    assert landed >= KILLS // 2  # the kills hit running processes, not finished ones


def configuration(t: optuna.trial.FrozenTrial) -> str:
    start = t.user_attrs.get("start") or {}
    return json.dumps({"arch": start.get("arch"), "hparams": start.get("hparams")}, sort_keys=True)


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="HARNESS_TEST_POSTGRES_URL not set (run .ci/postgres)")
@pytest.mark.parametrize("workload", ["digits-hyperparameters", "nb201-npenas"])
def test_three_benches_and_a_worker_on_postgres(tmp_path: Path, table: Path, workload: str) -> None:
    """Three identical ``harness bench`` started at once plus one ``harness worker`` (as from another
    machine, own results folder) share a run through PostgreSQL."""
    run_id = f"faults-{workload}-{uuid.uuid4().hex[:8]}"
    if workload == "digits-hyperparameters":  # continuous hyperparameters: a repeat is a replayed draw
        budget, n_cells = 8, 2
        common = ["--samplers", "random,tpe", "--pruners", "none", "--seeds", "0", "--trials", str(budget),
                  "--epochs", "1", "--max-per-class", "10", "--run-id", run_id, "--no-progress",
                  "--reporters", "summary", "--threads", "1"]
    else:  # NPENAS never proposes an architecture another trial of the cell holds
        budget, n_cells = 16, 1
        common = [*tabular_args(table, run_id, budget, algorithms="npenas-np"), "--npenas-init", "4",
                  "--npenas-batch", "2", "--npenas-candidates", "20", "--npenas-np-epochs", "5", "--threads", "1"]
    common += ["--storage", str(POSTGRES_URL)]
    procs = [subprocess.Popen(harness("bench", *common, "--results", str(tmp_path / "a")),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
    procs.append(subprocess.Popen(harness("worker", *common, "--results", str(tmp_path / "b")),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    errors = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=900)
            if proc.returncode != 0:
                errors.append(err.decode()[-1500:])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()  # closes its pipe
    assert errors == []
    final = subprocess.run(harness("report", run_id, "--results", str(tmp_path / "a")), capture_output=True, check=False,
                           text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    cells = snapshot(str(POSTGRES_URL), run_id)
    figures, problems = check_final(cells, tmp_path / "a" / run_id, budget, n_cells)
    duplicates = {name: [c for c, n in Counter(configuration(t) for t in trials if counted(t)
                                              and t.state != TrialState.FAIL).items() if n > 1]
                  for name, trials in cells.items()}
    n_duplicates = sum(len(v) for v in duplicates.values())
    print(f"\npostgres {workload}: 3 bench + 1 worker, {n_cells}x{budget} trials, {figures['surplus']} surplus "
          f"(started past the budget, not run), {figures['duplicated']} duplicated trials, {figures['running']} left "
          f"running, {n_duplicates} duplicated configurations")
    assert problems == []
    assert n_duplicates == 0, duplicates

