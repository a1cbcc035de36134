"""What an evaluator returns is checked before it is recorded: a wrong type or a percentage fails
that trial with one line naming the dataset, never the run, and never enters the results."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.cell import checked_outcome
from harness.components import TrialOutcome


def _outcome(val: Any = 0.5, test: Any = 0.4) -> TrialOutcome:
    return TrialOutcome(val_accuracy=val, test_accuracy=test, madds=1.0, params=1, epochs=1, train_seconds=0.1,
                        eval_seconds=0.0)


def test_a_valid_outcome_passes_unchanged() -> None:
    outcome = _outcome(1.0, None)
    assert checked_outcome(outcome, "d") is outcome
    assert checked_outcome(_outcome(0, 0.0), "d").val_accuracy == 0


@pytest.mark.parametrize(("returned", "error", "message"), [
    (0.5, TypeError, "evaluator of dataset 'd' returned float, expected a TrialOutcome"),
    (None, TypeError, "returned NoneType, expected a TrialOutcome"),
    (_outcome(87.0), ValueError, "val_accuracy 87.0: accuracies are fractions in \\[0, 1\\]"),
    (_outcome(0.5, 86.0), ValueError, "test_accuracy 86.0: accuracies are fractions"),
    (_outcome(-0.1), ValueError, "val_accuracy -0.1"),
    (_outcome(math.nan), ValueError, "val_accuracy nan"),
    (_outcome(math.inf), ValueError, "val_accuracy inf"),
    (_outcome("0.5"), TypeError, "val_accuracy '0.5' \\(str\\), expected a number"),
    (_outcome(True), TypeError, "val_accuracy True \\(bool\\)"),
])
def test_a_bad_outcome_is_refused_naming_the_dataset(returned: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        checked_outcome(returned, "d")


def test_a_stopped_trial_may_carry_a_nan_but_no_percentage() -> None:
    """A diverged loss stops a trial with what it measured, a NaN accuracy included."""
    assert math.isnan(checked_outcome(_outcome(math.nan), "d", stopped=True).val_accuracy)
    with pytest.raises(ValueError, match="fractions"):
        checked_outcome(_outcome(55.0), "d", stopped=True)
    with pytest.raises(TypeError, match="expected a TrialOutcome"):
        checked_outcome({"val_accuracy": 0.5}, "d", stopped=True)


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

    return write_synthetic_table(tmp_path / "nb201.csv")


@pytest.mark.parametrize("bad", ["float", "percent"])
def test_a_bad_evaluator_fails_its_cell_only_and_a_rerun_ends_the_same(
        bad: str, table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The cifar10 table's evaluator answers a float (or a percentage) instead of a fraction in a
    TrialOutcome: its trials fail (five in a row fail the cell), the cifar100 cell completes, the
    command ends incomplete (exit 3) without a traceback, and so does a rerun."""
    from dataclasses import replace

    from harness_plugins.datasets.nb201_table import NB201TableEvaluator

    from harness.cli import main

    honest = NB201TableEvaluator.evaluate

    def evaluate(self: NB201TableEvaluator, *args: Any) -> Any:
        outcome = honest(self, *args)
        if self.column != "CIFAR10TestAccuracy200Epochs":
            return outcome
        return outcome.val_accuracy if bad == "float" else replace(outcome, val_accuracy=100 * outcome.val_accuracy)

    monkeypatch.setattr(NB201TableEvaluator, "evaluate", evaluate)
    command = ["bench", "--datasets", "nb201-cifar10,nb201-cifar100", "--table", str(table), "--spaces", "nb201",
               "--algorithms", "random", "--samplers", "random", "--pruners", "none", "--seeds", "0", "--trials", "8",
               "--results", str(tmp_path / "r"), "--run-id", "bad", "--no-progress", "--reporters", "summary"]
    for _ in range(2):
        assert main(command) == 3
        assert "Traceback" not in capsys.readouterr().err
        cells = pd.read_csv(tmp_path / "r" / "bad" / "cells.csv").set_index("dataset")
        assert cells.loc["nb201-cifar100", "state"] == "done"
        assert cells.loc["nb201-cifar10", "state"] == "failed"
        trials = pd.read_csv(tmp_path / "r" / "bad" / "trials.csv")
        bad_trials = trials[trials["dataset"] == "nb201-cifar10"]
        assert (bad_trials["state"] == "failed").all() and bad_trials["val_accuracy"].isna().all()
        expected = "returned float, expected a TrialOutcome" if bad == "float" else "accuracies are fractions"
        assert bad_trials["error"].str.contains(expected).all()
        assert bad_trials["error"].str.contains("evaluator of dataset 'nb201-cifar10'").all()


@pytest.mark.parametrize(("proposed", "message"), [
    (None, "algorithm Bad proposed NoneType None, expected an architecture"),
    ([1, 2], "algorithm Bad proposed list \\[1, 2\\], expected an architecture"),
    ({"width": {1, 2}}, "algorithm Bad proposed an architecture that is not JSON-serialisable"),
])
def test_a_malformed_architecture_fails_the_trial_naming_the_algorithm(proposed: Any, message: str) -> None:
    from harness.components import SearchAlgorithm
    from harness.testing import TinySpace, make_cell

    class Bad(SearchAlgorithm):
        def propose(self, trial: Any, cell: Any) -> Any:
            return proposed

    class Keyed(TinySpace):  # its identity of an architecture takes anything: only the algorithm is to blame
        def arch_id(self, arch: Any) -> str:
            return repr(arch)

    cell = make_cell(Keyed(), Bad(), lambda arch: 0.5)
    cell.run(1)
    (row,) = cell.trial_rows()
    assert row["state"] == "failed" and message.replace("\\", "") in row["error"].replace("\\", "")


def test_numpy_accuracies_are_numbers_and_recorded_as_floats() -> None:
    import numpy as np

    outcome = checked_outcome(_outcome(np.float32(0.5), np.float64(0.25)), "d")
    assert type(outcome.val_accuracy) is float and type(outcome.test_accuracy) is float
    assert (outcome.val_accuracy, outcome.test_accuracy) == (0.5, 0.25)
    with pytest.raises(TypeError, match="expected a number"):
        checked_outcome(_outcome(np.bool_(True)), "d")


def test_a_failure_beside_another_workers_running_trial_does_not_fail_the_cell() -> None:
    """Budget 2: another worker runs trial 0, which will complete; this worker's trial 1 fails. It
    must not judge the cell "every trial failed" while trial 0 runs, and once trial 0 completes
    the cell is done (the worker finishing last judges, with every trial in view)."""
    from harness import schema
    from harness.results import cell_state
    from harness.testing import TinySpace, make_cell
    from harness_plugins.algorithms.random_search import RandomSearch

    def score(arch: Any) -> float:
        raise RuntimeError("out of memory in this trial only")

    cell = make_cell(TinySpace(), RandomSearch(), score)
    elsewhere = cell.ask()
    elsewhere.set_user_attr(schema.START, {"worker": "elsewhere"})
    assert cell.run(1) == "done"
    assert not cell.study.user_attrs.get(schema.FAILED)
    elsewhere.set_user_attr(schema.RECORD, {"device": "cpu"})
    cell.study.tell(elsewhere, 0.9)
    assert cell_state(cell.study.get_trials(deepcopy=False), cell.study.user_attrs, None) != "failed"
