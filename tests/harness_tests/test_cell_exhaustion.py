"""A unique-architecture algorithm on a space smaller than the budget: the cell ends ``exhausted``
(finished, not failed), and an exhausted space is told from a busy one (other workers' claims)."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from harness import cell as cell_module
from harness import schema
from harness.components import Architecture, CellContext, SearchAlgorithm, SpaceExhausted
from harness.testing import KitCell, TinySpace, make_cell, run_results, run_trials, tiny_score
from harness.workers import ProcessIdentity

SIZE = 27  # TinySpace's architectures


class Exhaustive(SearchAlgorithm):
    """Proposes the space's architectures in enumeration order, skipping every one evaluated,
    running or failed, and raises :class:`SpaceExhausted` when none is left."""

    requires = frozenset({"enumerate"})
    unique_architectures = True

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        seen = {h.arch_id for h in cell.history()} | cell.taken_arch_ids()
        every = cell.space.enumerate()
        for arch in every:
            if cell.space.arch_id(arch) not in seen:
                return arch
        raise SpaceExhausted("no architecture left", size=len(every))


class Repeating(Exhaustive):
    """Promises unique architectures but, with none left, proposes a taken one instead of raising."""

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        try:
            return super().propose(trial, cell)
        except SpaceExhausted:
            return cell.space.enumerate()[0]


class Fixed(SearchAlgorithm):
    """Always proposes the same architecture (unique_architectures: only the claim check dedupes)."""

    unique_architectures = True

    def __init__(self, arch: Architecture) -> None:
        self.arch = arch

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        return self.arch


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cell_module, "EXHAUSTION_POLL_SECONDS", 0.02)


def rows_by_state(cell: KitCell) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in cell.trial_rows():
        out.setdefault(row["state"], []).append(row)
    return out


def evaluated_once(cell: KitCell) -> bool:
    """Every architecture of the space evaluated by exactly one counted trial."""
    ids = [r["arch_id"] for r in cell.trial_rows() if r["state"] in ("complete", "pruned", "failed")]
    return sorted(ids) == sorted(cell.space.arch_id(a) for a in cell.space.enumerate())


def other_worker_claims(cell: KitCell, arch: Architecture, proc: dict[str, Any] | None = None) -> optuna.Trial:
    """A trial another worker is running with ``arch`` claimed (its process ``proc``)."""
    trial = cell.ask()
    if proc is not None:
        trial.set_user_attr(schema.PROC, proc)
    trial.set_user_attr(schema.START, {"worker": "elsewhere", "arch": arch, "arch_id": cell.space.arch_id(arch)})
    return trial


def left_over(cell: KitCell) -> Architecture:
    """The one architecture of the space the cell has not evaluated."""
    seen = {h.arch_id for h in cell.history()}
    (arch,) = [a for a in cell.space.enumerate() if cell.space.arch_id(a) not in seen]
    return arch


def in_thread(work: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    return thread, out


def test_a_space_smaller_than_the_budget_ends_the_cell_exhausted_not_failed(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="harness.cell"):
        cell = run_trials(Exhaustive(), TinySpace(), 40, tiny_score)
    assert cell.states == ["exhausted"]
    states = rows_by_state(cell)
    assert set(states) == {"complete", "exhausted"} and len(states["complete"]) == SIZE
    assert evaluated_once(cell)
    # the trial that found nothing left is a placeholder: no architecture, no budget
    (placeholder,) = states["exhausted"]
    assert placeholder["arch_id"] is None and "all 27 architectures evaluated" in placeholder["reason"]
    used = schema.budget_used(cell.study.get_trials(), cell.study.user_attrs)
    assert (used.claimed, used.finished) == (SIZE, SIZE)
    (line,) = [r.getMessage() for r in caplog.records if "exhausted" in r.getMessage()]
    assert line == (f"cell {cell.cell.key}: search space exhausted: all 27 architectures evaluated in 27 trials of "
                    f"the budget of 40; the cell is finished")
    table = run_results(tmp_path, [cell]).cells
    assert table["state"].tolist() == ["exhausted"] and table["trials_failed"].tolist() == [0]
    assert table["reason"].iloc[0] == "search space exhausted: all 27 architectures evaluated in 27 trials of the " \
                                      "budget of 40"
    # a resumed run, or another worker, asks for nothing more
    assert cell.run(10) == "exhausted"
    assert cell.run(10, algorithm=Exhaustive(), worker_index=1) == "exhausted"
    assert len(cell.study.get_trials()) == SIZE + 1


def test_an_algorithm_that_repeats_taken_architectures_on_an_enumerable_space_is_exhausted_too() -> None:
    cell = run_trials(Repeating(), TinySpace(), 30, tiny_score)
    assert cell.states == ["exhausted"] and evaluated_once(cell)
    assert "failed" not in rows_by_state(cell)


def test_proposals_taken_by_running_trials_of_other_workers_are_contention_not_exhaustion() -> None:
    arch = {"width": "wide", "act": "relu", "depth": "two"}
    cell = make_cell(TinySpace(), Fixed(arch), tiny_score)
    elsewhere = other_worker_claims(cell, arch)
    # its one trial failed, and the space is not exhausted; the other worker's trial still runs, so
    # the cell is not judged failed yet (the worker that tells the last trial judges)
    assert cell.run(1) == "done" and not cell.study.user_attrs.get(schema.FAILED)
    (failed,) = rows_by_state(cell)["failed"]
    assert "proposed 20 architectures in a row that other trials had claimed" in failed["error"]
    assert failed["arch_id"] is None  # it gave its claims up: a failed trial holds nothing
    assert schema.EXHAUSTED not in cell.study.user_attrs
    cell.study.tell(elsewhere, state=TrialState.FAIL)


def test_a_trial_waits_for_a_running_claim_before_calling_the_space_exhausted() -> None:
    cell = run_trials(Exhaustive(), TinySpace(), SIZE - 1, tiny_score)
    elsewhere = other_worker_claims(cell, left_over(cell))
    thread, state = in_thread(lambda: cell.run(5))
    time.sleep(0.5)
    assert thread.is_alive() and schema.EXHAUSTED not in cell.study.user_attrs  # busy, not exhausted
    elsewhere.set_user_attr(schema.RECORD, {"device": "cpu"})
    cell.study.tell(elsewhere, 0.5)  # the other worker evaluated it
    thread.join(10)
    assert state == ["exhausted"]
    assert "failed" not in rows_by_state(cell)
    assert len(rows_by_state(cell)["complete"]) == SIZE  # the other worker's trial included


def test_a_dead_worker_s_claim_is_evaluated_not_taken_as_exhausted() -> None:
    cell = run_trials(Exhaustive(), TinySpace(), SIZE - 1, tiny_score)
    worker = subprocess.Popen(["sleep", "60"])
    try:
        other_worker_claims(cell, left_over(cell), proc=ProcessIdentity.of(worker.pid))
        thread, state = in_thread(lambda: cell.run(5))
        time.sleep(0.3)
        assert thread.is_alive()  # waiting on the live worker's claim
    finally:
        worker.kill()
        worker.wait()
    thread.join(10)  # the dead worker's trial is failed as killed, its architecture freed and evaluated here
    assert state == ["exhausted"]
    states = rows_by_state(cell)
    assert len(states["killed"]) == 1 and "failed" not in states
    assert evaluated_once(cell)


class Deliberate(Exhaustive):
    """Takes its time between looking at the claims and proposing: concurrent workers collide."""

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        arch = super().propose(trial, cell)
        time.sleep(0.003)
        return arch


def test_three_workers_at_once_evaluate_every_architecture_once_and_all_end_exhausted() -> None:
    storage = optuna.storages.InMemoryStorage()  # shared by three threads, as a run's storage by its workers

    def slow_score(arch: Architecture) -> float:
        time.sleep(0.002)
        return tiny_score(arch)

    cells = [make_cell(TinySpace(), Deliberate(), slow_score, storage=storage) for _ in range(3)]
    runs = [in_thread(lambda c=c, i=i: c.run(40, worker_index=i)) for i, c in enumerate(cells)]
    for thread, _ in runs:
        thread.join(30)
    assert [state for _, state in runs] == [["exhausted"]] * 3
    states = rows_by_state(cells[0])
    assert "failed" not in states and len(states["complete"]) == SIZE
    assert evaluated_once(cells[0])
    assert schema.budget_used(cells[0].study.get_trials(), cells[0].study.user_attrs).claimed == SIZE


class Grid(SearchAlgorithm):
    """Walks the space in enumeration order by the finished trials alone (no uniqueness promised)
    and raises :class:`SpaceExhausted` once every architecture is in the history."""

    requires = frozenset({"enumerate"})

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        every = cell.space.enumerate()
        if len(cell.history()) >= len(every):
            raise SpaceExhausted("the grid is done", size=len(every))
        return every[len(cell.history())]


def test_any_algorithm_may_end_its_cell_as_exhausted() -> None:
    cell = run_trials(Grid(), TinySpace(), 30, tiny_score)
    assert cell.states == ["exhausted"] and evaluated_once(cell)
    assert cell.study.user_attrs[schema.EXHAUSTED]["size"] == SIZE
