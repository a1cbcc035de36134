"""The grid runner against real Optuna storage: failures stay local, pruning, resume, workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from harness import hookimpl
from harness.components import RunResults, SpaceSpec
from harness.config import RunConfig
from harness.registry import Registry, load_registry
from harness.runner import RunIncomplete, run_bench
from harness.storage import open_storage, storage_url
from tests.harness_tests.plugins_support import ToySpace


def _incomplete_run(config: RunConfig, registry: Registry) -> RunResults:
    """run_bench on a grid with a failing cell: the run ends incomplete (exit code 3 on the command
    line), and the results are exported all the same."""
    with pytest.raises(RunIncomplete, match=r"cell\(s\) failed") as incomplete:
        run_bench(config, registry)
    return incomplete.value.results


def _config(tmp_path: Path, **overrides: Any) -> RunConfig:
    base: dict[str, Any] = dict(datasets=["digits"], spaces=["convfc"], algorithms=["sampler"], samplers=["random"],
                                pruners=["none"], seeds=[0], trials=3, epochs=2, results=str(tmp_path / "results"),
                                progress=False, max_per_class=40, device="cpu")
    base.update(overrides)
    return RunConfig(**base)


class _Plugin:
    """An inline plugin registering toy spaces that misbehave on purpose."""

    def __init__(self, specs: list[SpaceSpec]) -> None:
        self.specs = specs

    @hookimpl
    def harness_spaces(self) -> list[SpaceSpec]:
        return self.specs


def _registry(*specs: SpaceSpec) -> Any:
    return load_registry(extra_plugins=[("toys", _Plugin(list(specs)))])


def _space(name: str, **kwargs: Any) -> SpaceSpec:
    return SpaceSpec(name=name, description="test toy", factory=lambda options: ToySpace(**kwargs))


@pytest.mark.slow
def test_exception_in_a_component_fails_that_trial_with_traceback(tmp_path: Path) -> None:
    registry = _registry(_space("flaky", raise_on="bad"))
    config = _config(tmp_path, spaces=["flaky", "convfc"], trials=10)
    results = run_bench(config, registry)
    trials = results.trials
    flaky = trials[trials["space"] == "flaky"]
    failed = flaky[flaky["state"] == "failed"]
    assert len(failed) > 0 and (failed["arch"].str.contains('"bad"')).all()
    assert failed["error"].str.contains("RuntimeError: toy space refuses").all()
    assert failed["error"].str.contains("Traceback").all()
    assert (flaky[flaky["state"] == "complete"]["arch"].str.contains('"good"')).all()
    assert set(results.cells["state"]) == {"done"}
    assert (trials[trials["space"] == "convfc"]["state"] == "complete").sum() == 10


@pytest.mark.slow
def test_a_component_factory_error_fails_only_its_cell(tmp_path: Path) -> None:
    def broken(options: Any) -> Any:
        raise ValueError("factory exploded")

    registry = _registry(SpaceSpec(name="broken", description="x", factory=broken))
    results = _incomplete_run(_config(tmp_path, spaces=["broken", "convfc"]), registry)
    cells = results.cells.set_index("space")
    assert cells.loc["broken", "state"] == "failed"
    assert "factory exploded" in cells.loc["broken", "reason"]
    assert cells.loc["convfc", "state"] == "done" and cells.loc["convfc", "trials_complete"] == 3


@pytest.mark.slow
def test_nan_loss_is_pruned_with_the_reason_and_the_cell_goes_on(tmp_path: Path) -> None:
    registry = _registry(_space("nan", nan_on="bad"))
    results = run_bench(_config(tmp_path, spaces=["nan"], trials=10), registry)
    trials = results.trials
    bad = trials[trials["arch"].str.contains('"bad"')]
    assert len(bad) > 0 and set(bad["state"]) == {"pruned"}
    assert bad["reason"].str.contains("training loss is nan at epoch 1").all()
    assert set(trials[trials["arch"].str.contains('"good"')]["state"]) == {"complete"}
    assert results.cells["state"].tolist() == ["done"]


@pytest.mark.slow
def test_pruner_stops_hopeless_trials_early_and_reports_val_not_test(tmp_path: Path) -> None:
    registry = _registry(_space("halfdead", dead_on="bad"))
    config = _config(tmp_path, spaces=["halfdead"], pruners=["median"], trials=14, epochs=4,
                     fixed={"lr": 0.05, "optimizer": "adam", "batch_size": 64})
    results = run_bench(config, registry)
    trials = results.trials
    pruned = trials[trials["state"] == "pruned"]
    late_bad = trials[(trials["trial"] >= 5) & trials["arch"].str.contains('"bad"')]
    assert len(late_bad) > 0
    # after the median pruner's 5 start-up trials, every chance-level trial stops at its first
    # check (epoch 2: one warm-up epoch) instead of training 4 epochs
    assert set(late_bad["state"]) == {"pruned"} and set(late_bad["epochs"]) == {2}
    assert (pruned["epochs"] < 4).all() and pruned["reason"].str.contains("MedianPruner").all()
    assert (trials[trials["trial"] < 5]["state"] == "complete").all()
    storage = open_storage(storage_url(None, config.run_dir))
    study = optuna.load_study(study_name=f"{config.run_id}/{results.cells['cell'][0]}", storage=storage)
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        row = trials[trials["trial"] == t.number].iloc[0]
        assert t.intermediate_values[4] == pytest.approx(row["val_accuracy"])
        assert sorted(t.intermediate_values) == [1, 2, 3, 4]


@pytest.mark.slow
def test_multi_objective_cells_store_accuracy_and_madds(tmp_path: Path) -> None:
    config = _config(tmp_path, samplers=["nsga2"])
    results = run_bench(config, load_registry())
    storage = open_storage(storage_url(None, config.run_dir))
    study = optuna.load_study(study_name=f"{config.run_id}/{results.cells['cell'][0]}", storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    for t, (_, row) in zip(study.trials, results.trials.iterrows()):
        assert t.values == [pytest.approx(row["val_accuracy"]), pytest.approx(row["madds"])]


@pytest.mark.slow
def test_two_jobs_share_the_cells_through_storage(tmp_path: Path) -> None:
    # enough work that the spawned worker (torch import, data load) joins before the end
    # (here the spawned worker ran 7 or 8 of 24 trials: 40 leave a margin on a quicker machine)
    config = _config(tmp_path, seeds=[0, 1], trials=20, epochs=4, jobs=2)
    results = run_bench(config, load_registry())
    trials = results.trials
    # a random learning rate may diverge: that trial is pruned (a NaN loss) and spends budget too
    spent = trials[trials["state"].isin(["complete", "pruned"])]
    counts = spent.groupby("cell").size()
    # trials a worker started after the budget was claimed are marked surplus, not run: every
    # cell gets exactly its budget, whichever worker ran which trial
    assert (counts == 20).all() and len(counts) == 2
    assert set(trials["state"]) <= {"complete", "pruned", "surplus"}
    assert spent["worker"].nunique() == 2
    assert not trials.duplicated(["cell", "trial"]).any()
    # the two workers' samplers draw different configurations, never the same ones twice
    params = [c for c in trials.columns if c.startswith(("hp.", "arch."))]
    done = trials[trials["state"] == "complete"]
    assert not done.duplicated(["cell", *params]).any()


@pytest.mark.slow
def test_killed_run_resumes_without_losing_or_repeating(tmp_path: Path) -> None:
    results = tmp_path / "results"
    args = [sys.executable, "-m", "harness", "bench", "--results", str(results), "--trials", "20", "--epochs", "2",
            "--max-per-class", "40", "--seeds", "0", "--samplers", "random", "--pruners", "none", "--no-progress", "--run-id", "k"]
    proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = results / "k" / "optuna.journal"
    deadline = time.time() + 120
    completed = 0
    while time.time() < deadline and completed < 2:
        time.sleep(0.2)
        if journal.exists():
            storage = open_storage(storage_url(None, results / "k"))
            cells = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
                     if "|" in s.study_name]  # not the run's workers and claims studies
            if cells:
                study = optuna.load_study(study_name=cells[0], storage=storage)
                completed = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= completed < 20
    before = {t.number: t.values for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
    from harness.cli import main

    assert main(args[3:]) == 0
    trials = pd.read_csv(results / "k" / "trials.csv")
    done = trials[trials["state"] == "complete"]
    assert len(done) == 20 and not done.duplicated("trial").any()
    for number, values in before.items():  # completed before the kill: kept, unchanged
        assert done.set_index("trial").loc[number, "val_accuracy"] == pytest.approx(values[0])
    params = [c for c in trials.columns if c.startswith(("hp.", "arch."))]
    assert not done.duplicated(params).any()  # the resumed sampler does not replay its first draws
    killed = trials[trials["state"] == "killed"]
    assert len(killed) <= 1
    assert all("died mid-trial" in reason for reason in killed["reason"])


def test_consecutive_failures_fail_the_cell(tmp_path: Path) -> None:
    registry = _registry(_space("broken", raise_on="any"))
    results = _incomplete_run(_config(tmp_path, spaces=["broken"], trials=8), registry)
    # every trial raises, so the cell stops after five of its eight trials, as failed
    cells = results.cells
    assert cells["state"].tolist() == ["failed"] and "5 consecutive trials failed" in cells["reason"].iloc[0]
    assert cells["trials_failed"].iloc[0] == 5
    # a rerun tries again, and goes on counting: one more failure fails it again
    cells = _incomplete_run(_config(tmp_path, spaces=["broken"], trials=8), registry).cells
    assert cells["state"].tolist() == ["failed"] and "6 consecutive trials failed" in cells["reason"].iloc[0]
    assert cells["trials_failed"].iloc[0] == 6


def test_a_budget_spent_by_failures_leaves_the_cell_failed_on_every_rerun(tmp_path: Path) -> None:
    registry = _registry(_space("broken", raise_on="any"))
    for _ in range(2):  # the rerun finds the budget spent: nothing to run, and the cell is not "done"
        cells = _incomplete_run(_config(tmp_path, spaces=["broken"], trials=3), registry).cells
        assert cells["state"].tolist() == ["failed"] and "every trial failed (3)" in cells["reason"].iloc[0]
        assert cells["trials_failed"].iloc[0] == 3


@pytest.mark.slow
def test_a_sampler_factory_error_fails_only_its_cell(tmp_path: Path) -> None:
    from harness.components import SamplerSpec

    def broken(request: Any) -> Any:
        raise RuntimeError("sampler factory exploded")

    class Plugin:
        @hookimpl
        def harness_samplers(self) -> list[SamplerSpec]:
            return [SamplerSpec(name="broken", description="x", factory=broken)]

    registry = load_registry(extra_plugins=[("b", Plugin())])
    results = _incomplete_run(_config(tmp_path, samplers=["broken", "random"]), registry)
    cells = results.cells.set_index("sampler")
    assert cells.loc["broken", "state"] == "failed" and "sampler factory exploded" in cells.loc["broken", "reason"]
    assert cells.loc["random", "state"] == "done" and cells.loc["random", "trials_complete"] == 3


def test_timeout_alone_is_a_budget(tmp_path: Path) -> None:
    results = run_bench(_config(tmp_path, trials=0, timeout=1.0, epochs=1), load_registry())
    assert results.cells["state"].tolist() == ["done"] and results.cells["trials_complete"].iloc[0] >= 1


@pytest.mark.parametrize("multi_objective", [False, True])
def test_a_cell_that_failed_to_build_recovers_with_its_real_directions(tmp_path: Path, multi_objective: bool) -> None:
    """A failed build leaves a study with the cell's real directions, and a rerun that builds clears
    the old error: the cell maximises accuracy (and minimises MAdds when multi-objective)."""
    from harness.components import SamplerSpec

    fail = {"now": True}

    def sometimes(request: Any) -> Any:
        if fail["now"]:
            raise RuntimeError("sampler factory exploded")
        return optuna.samplers.RandomSampler(seed=request.seed)

    class Plugin:
        @hookimpl
        def harness_samplers(self) -> list[SamplerSpec]:
            return [SamplerSpec(name="flaky", description="x", factory=sometimes, multi_objective=multi_objective)]

    config = _config(tmp_path, samplers=["flaky"], trials=2, epochs=1, run_id="rec")
    first = _incomplete_run(config, load_registry(extra_plugins=[("f", Plugin())]))
    assert first.cells["state"].tolist() == ["failed"]
    fail["now"] = False
    second = run_bench(config, load_registry(extra_plugins=[("f", Plugin())]))
    assert second.cells["state"].tolist() == ["done"] and pd.isna(second.cells["reason"].iloc[0])
    storage = open_storage(storage_url(None, config.run_dir))
    (name,) = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
               if "|" in s.study_name]
    study = optuna.load_study(study_name=name, storage=storage)
    expected = ["MAXIMIZE", "MINIMIZE"] if multi_objective else ["MAXIMIZE"]
    assert [d.name for d in study.directions] == expected
    best = max(t.values[0] for t in study.trials if t.values)
    assert best == second.trials["val_accuracy"].max()  # the values told are accuracies, not losses


def test_a_failed_cell_makes_the_command_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A run whose cell failed is not finished: exit code 3 (as a cell short of its budget), one
    line naming the failed cell count, and the results and reports still written."""
    import harness.registry
    from harness import cli

    monkeypatch.setattr(harness.registry, "load_registry", lambda *a, **k: _registry(_space("broken", raise_on="any")))
    code = cli.main(["bench", "--datasets", "digits", "--spaces", "broken", "--algorithms", "sampler",
                     "--samplers", "random", "--pruners", "none", "--seeds", "0", "--trials", "6", "--epochs", "1",
                     "--max-per-class", "20", "--results", str(tmp_path), "--run-id", "f", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3 and "1 cell(s) failed" in err
    assert pd.read_csv(tmp_path / "f" / "cells.csv")["state"].tolist() == ["failed"]


@pytest.mark.slow
def test_failed_trials_in_a_finished_cell_are_noted(tmp_path: Path) -> None:
    registry = _registry(_space("flaky", raise_on="bad"))
    results = run_bench(_config(tmp_path, spaces=["flaky"], trials=10), registry)
    cell = results.cells.iloc[0]
    assert cell["state"] == "done" and cell["trials_failed"] > 0
    assert f"{cell['trials_failed']} of its trials failed" in cell["note"]
