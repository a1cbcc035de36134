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
                                 _finish_stragglers=lambda runnable, progress: None)
        Worker.work(worker, planned)  # type: ignore[arg-type]
        assert order[0] == first and sorted(order) == ["c0", "c1", "c2", "c3"]


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
