"""What makes ``--jobs`` pay on tables: workers spread over cells, and a worker process on a table
imports neither torch nor scipy (seconds of start-up per process, for a cell that may take less)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from harness.runner import Worker


def test_each_worker_starts_at_the_cell_its_ordinal_points_to_and_walks_them_all() -> None:
    planned = [SimpleNamespace(na=None, cell=f"c{i}", key=f"c{i}") for i in range(4)]
    planned.insert(2, SimpleNamespace(na="not applicable", cell="na", key="na"))
    for ordinal, first in ((0, "c0"), (1, "c1"), (2, "c2"), (5, "c1")):
        order: list[str] = []
        worker = SimpleNamespace(ordinal=ordinal, run_cell=lambda cell, progress, seen=order: seen.append(cell),
                                 _finish_stragglers=lambda runnable, progress: None,
                                 _worked_on_elsewhere=lambda entry: False, _claim_cell=lambda entry: 1,
                                 _release_cell=lambda claim: None)
        Worker.work(worker, planned)  # type: ignore[arg-type]
        assert order[0] == first and sorted(order) == ["c0", "c1", "c2", "c3"]


def test_a_worker_goes_to_cells_no_other_worker_is_on_first_and_helps_with_those_last() -> None:
    planned = [SimpleNamespace(na=None, cell=f"c{i}", key=f"c{i}") for i in range(5)]
    order: list[str] = []
    released: list[int] = []
    worker = SimpleNamespace(ordinal=1, run_cell=lambda cell, progress: order.append(cell),
                             _finish_stragglers=lambda runnable, progress: None,
                             _worked_on_elsewhere=lambda entry: entry.cell in ("c2", "c0"),
                             # c4: another worker claimed it at the same moment (it looked free)
                             _claim_cell=lambda entry: None if entry.cell == "c4" else int(entry.cell[1:]),
                             _release_cell=released.append)
    Worker.work(worker, planned)  # type: ignore[arg-type]
    assert order == ["c1", "c3", "c2", "c4", "c0"]
    assert released == [1, 3]  # each claim held is given back once its cell is done


def _study_with_trial_by(storage: object, name: str, attrs: dict[str, object]) -> None:
    import optuna

    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True)  # type: ignore[arg-type]
    study.enqueue_trial({}, user_attrs=attrs)
    study.ask()


def test_a_cell_is_worked_on_elsewhere_when_its_latest_trial_is_another_live_workers(tmp_path: Path) -> None:
    import os

    from optuna.study import StudyDirection

    from harness import schema
    from harness.claims import claims_study
    from harness.storage import open_storage
    from harness.workers import WORKER_ID, ProcessIdentity, this_process

    storage = open_storage(f"journal:{tmp_path / 'j'}")
    alive = ProcessIdentity.of(os.getppid())  # the test runner's parent: alive, not this process
    dead = dict(this_process(), pid=2**22 + 1, started="1")
    _study_with_trial_by(storage, "r/mine", {schema.WORKER: WORKER_ID, schema.PROC: this_process()})
    _study_with_trial_by(storage, "r/other", {schema.WORKER: "elsewhere:1:x", schema.PROC: alive})
    _study_with_trial_by(storage, "r/dead", {schema.WORKER: "elsewhere:2:y", schema.PROC: dead})
    storage.create_new_study([StudyDirection.MINIMIZE], "r/empty")
    me = SimpleNamespace(storage=storage, config=SimpleNamespace(run_id="r"), _claims=claims_study(storage, "r"))

    def elsewhere(name: str) -> bool:
        entry = SimpleNamespace(cell=SimpleNamespace(study_name=lambda run_id: f"{run_id}/{name}"))
        return Worker._worked_on_elsewhere(me, entry)  # type: ignore[arg-type]

    assert elsewhere("other")
    assert not elsewhere("mine") and not elsewhere("dead") and not elsewhere("empty") and not elsewhere("new")
    # the latest trial decides: once this worker has a trial after the other's, the cell is its own
    _study_with_trial_by(storage, "r/other", {schema.WORKER: WORKER_ID, schema.PROC: this_process()})
    assert not elsewhere("other")


def test_limit_threads_does_not_import_torch_and_torch_takes_the_limit_when_imported() -> None:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from harness.device import limit_threads
        limit_threads(1)
        assert "torch" not in sys.modules
        import torch
        print(torch.get_num_threads())
        limit_threads(2)
        print(torch.get_num_threads())
    """)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "2"]


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

    return write_synthetic_table(tmp_path / "nb201.csv")


def test_a_worker_process_on_a_table_imports_neither_torch_nor_scipy(table: Path, tmp_path: Path) -> None:
    """What a ``--jobs`` worker process runs (``work_on_run``), in a fresh interpreter, on a run
    whose cells it finishes (the run's first process stopped after 5 trials of 20)."""
    import optuna

    from harness.cli import main
    from harness.storage import open_storage, storage_url

    common = ["--datasets", "nb201-cifar100", "--table", str(table), "--spaces", "nb201", "--algorithms",
              "random,rea", "--samplers", "random", "--pruners", "none", "--seeds", "0",
              "--results", str(tmp_path), "--run-id", "t", "--no-progress"]
    assert main(["bench", *common, "--trials", "5"]) == 0
    script = textwrap.dedent(f"""
        import sys
        from harness.cli import build_parser, config_from_args
        from harness.registry import load_registry
        from harness.runner import plan_grid, work_on_run
        registry = load_registry()
        config = config_from_args(build_parser(registry).parse_args(["bench", *{common!r}, "--trials", "20"]),
                                  registry)
        work_on_run(config, registry, plan_grid(config, registry))
        print(sorted(m for m in ("torch", "scipy.stats") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr
    storage = open_storage(storage_url(None, tmp_path / "t"))
    for study in storage.get_all_studies():
        if "|" in study.study_name:
            trials = optuna.load_study(study_name=study.study_name, storage=storage).get_trials()
            assert len(trials) == 20 and all(t.state.is_finished() for t in trials)
            assert len({t.user_attrs["worker"] for t in trials}) == 2  # 15 run by the fresh process
    assert main(["report", "t", "--results", str(tmp_path)]) == 0
    trials = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert len(trials) == 40 and trials["device"].isna().all()


def _poll_waits(monkeypatch: pytest.MonkeyPatch, others_start_new_trials: bool) -> list[float]:
    """The waits of a worker that has finished its cells while another still runs one: that other
    worker either runs short trials, a new one at each look (a table), or one long one."""
    import optuna

    import harness.runner as runner

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="run-x/cell")
    study.ask()
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the other worker, meanwhile
        waits.append(seconds)
        if others_start_new_trials or len(waits) == 4:
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            study.tell(running[0].number, 0.5)
        if others_start_new_trials and len(waits) < 4:
            study.ask()

    monkeypatch.setattr(runner.time, "sleep", sleep)
    entry = SimpleNamespace(key="cell", cell=SimpleNamespace(study_name=lambda run_id: f"{run_id}/cell"))
    me = SimpleNamespace(storage=storage, config=SimpleNamespace(run_id="run-x"),
                         run_cell=lambda cell, progress: pytest.fail("no trial is dead"))
    Worker._finish_stragglers(me, [entry])  # type: ignore[arg-type]
    return waits


def test_a_finished_worker_looks_again_soon_while_others_trials_change_and_backs_off_while_one_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.runner import STRAGGLER_POLL_SECONDS

    shortest = STRAGGLER_POLL_SECONDS[0]
    assert _poll_waits(monkeypatch, others_start_new_trials=True) == [shortest] * 4
    assert _poll_waits(monkeypatch, others_start_new_trials=False) == [shortest, 2 * shortest, 4 * shortest,
                                                                       8 * shortest]


@pytest.mark.slow
def test_with_jobs_2_each_cell_is_searched_by_one_worker_but_the_last(table: Path, tmp_path: Path) -> None:
    """Workers walking the same list used to fall into step, both on every cell, each cell's
    budget split trial by trial between them; now a worker passes over a cell the other is on."""
    from harness.cli import main

    cells, budget = 10, 500
    assert main(["bench", "--datasets", "nb201-cifar100", "--table", str(table), "--spaces", "nb201",
                 "--algorithms", "random", "--samplers", "random", "--pruners", "none", "--seeds", f"0-{cells - 1}",
                 "--trials", str(budget), "--results", str(tmp_path), "--run-id", "spread", "--no-progress",
                 "--reporters", "summary", "--jobs", "2"]) == 0
    trials = pd.read_csv(tmp_path / "spread" / "trials.csv")
    counted = trials[trials["state"] == "complete"]
    assert counted.groupby("cell").size().tolist() == [budget] * cells
    workers = counted.groupby("cell")["worker"].nunique()
    assert counted["worker"].nunique() == 2, "the --jobs worker never joined"
    assert (workers > 1).sum() <= 2, workers.to_dict()
