"""What a trial costs a database: the storage reads a worker makes per trial, beyond its writes.

On an RDB storage (SQLite here, PostgreSQL for many machines) every read is a query, and Optuna's
own ``ask``/``tell`` makes three ``get_trial`` calls per trial. The harness's bookkeeping (the
budget before a trial, the surplus check after ``ask``, the record and the ``tell``) adds one
look for new trials and one read of the study's attributes, whatever the length of the cell.
Counted as the *marginal* calls per trial between a short and a longer cell, so the cell's
set-up does not count.
"""
from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import optuna
import pytest

from harness.cli import main

READS = ("get_trial", "get_trial_id_from_study_id_trial_number", "get_study_user_attrs", "get_all_trials")


def _calls_of_a_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trials: int, table: Path) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for name in READS:
        original = getattr(optuna.storages.RDBStorage, name)

        def counted(self: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(optuna.storages.RDBStorage, name, counted)
    results = tmp_path / f"r{trials}"
    assert main(["bench", "--datasets", "nb201-cifar100", "--table", str(table), "--spaces", "nb201",
                 "--algorithms", "random", "--samplers", "random", "--pruners", "none", "--seeds", "0",
                 "--trials", str(trials), "--results", str(results), "--run-id", "q", "--no-progress",
                 "--reporters", "summary", "--storage", f"sqlite:///{results / 'optuna.db'}"]) == 0
    monkeypatch.undo()
    return dict(counts)


def test_a_trial_reads_the_database_as_often_as_optunas_ask_and_tell_plus_two(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

    table = write_synthetic_table(tmp_path / "nb201.csv")
    short = _calls_of_a_cell(tmp_path, monkeypatch, 10, table)
    long = _calls_of_a_cell(tmp_path, monkeypatch, 40, table)
    per_trial = {name: (long.get(name, 0) - short.get(name, 0)) / 30 for name in READS}
    assert per_trial["get_trial"] <= 3  # Optuna's own: the Trial it makes, and two in tell
    assert per_trial["get_trial_id_from_study_id_trial_number"] <= 1  # the look for other workers' trials
    assert per_trial["get_study_user_attrs"] <= 1  # the budget and the exhaustion verdict, read together
    assert per_trial["get_all_trials"] == 0  # never the whole cell
