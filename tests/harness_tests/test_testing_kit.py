"""The plugin author's kit (harness.testing) catches what it promises to catch, and its cell is the
runner's: failures, budgets, trial columns and exports behave as in a run."""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from harness import hookimpl
from harness.components import (
    AlgorithmSpec,
    Architecture,
    CellContext,
    GeneratedSpaceState,
    GenerationRequest,
    GeneratorSpec,
    PrunerSpec,
    Reporter,
    ReporterSpec,
    RunResults,
    SearchAlgorithm,
    SearchSpace,
    SpaceGenerator,
)
from harness.testing import (
    AlgorithmContract,
    GeneratorContract,
    PrunerContract,
    ReporterContract,
    TinySpace,
    make_cell,
    run_results,
    run_trials,
    tiny_score,
)


class Stateful(SearchAlgorithm):
    """Keeps its own count of proposals: a second worker's trials make it go wrong."""

    requires = frozenset({"sample"})

    def __init__(self) -> None:
        self.proposed = 0

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        self.proposed += 1
        return cell.space.sample(np.random.default_rng([cell.seed, self.proposed]))


class Labelled(SearchAlgorithm):
    """Random search that records its move and an option's value as trial columns."""

    requires = frozenset({"sample"})

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth

    def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
        cell.record_trial_column(trial, "role", "init" if not cell.history() else "neighbour")
        cell.record_trial_column(trial, "depth", self.depth)
        return cell.space.sample(np.random.default_rng([cell.seed, trial.number]))


class DirtyReporter(Reporter):
    def __init__(self, where: str) -> None:
        self.where = where

    def report(self, results: RunResults, out_dir: Path) -> str:
        if self.where == "run_dir":
            (results.run_dir / "summary.csv").write_text("x\n")
        else:
            results.trials["val_accuracy"] = 0.0  # overwrites what the next reporter reads
        return ""


class KitPlugin:
    @hookimpl
    def harness_addoption(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--kit-depth", type=int, default=7)

    @hookimpl
    def harness_algorithms(self) -> list[AlgorithmSpec]:
        return [
            AlgorithmSpec(name="kit-stateful", description="x", factory=lambda options: Stateful()),
            AlgorithmSpec(name="kit-labelled", description="x", factory=lambda options: Labelled(options["kit_depth"])),
        ]

    @hookimpl
    def harness_pruners(self) -> list[PrunerSpec]:
        return [
            PrunerSpec(
                name="kit-always", description="x", factory=lambda request: optuna.pruners.ThresholdPruner(lower=2.0)
            )
        ]

    @hookimpl
    def harness_reporters(self) -> list[ReporterSpec]:
        return [
            ReporterSpec(name=f"kit-{where}", description="x", factory=lambda options, w=where: DirtyReporter(w))
            for where in ("run_dir", "mutate")
        ]


PLUGIN = [("kit", KitPlugin())]


class LabelledContract(AlgorithmContract):
    algorithm_name = "kit-labelled"
    extra_plugins = PLUGIN


def test_factories_get_every_plugin_default_and_the_declared_options() -> None:
    assert LabelledContract().make_algorithm().depth == 7  # options["kit_depth"] works under the kit

    class Deeper(LabelledContract):
        options = {"kit_depth": 9}

    contract = Deeper()
    assert contract.make_algorithm().depth == 9
    assert contract.options["rea_population"] == 30 and contract.options["epochs"] == 4  # built-in defaults too


def test_a_stateful_algorithm_fails_the_algorithm_contract() -> None:
    class StatefulContract(AlgorithmContract):
        algorithm_name = "kit-stateful"
        extra_plugins = PLUGIN

    StatefulContract().test_trials_run_through_the_runner_and_store_json_architectures()  # runs fine alone
    with pytest.raises(AssertionError, match="rebuild it from cell.history"):
        StatefulContract().test_a_running_instance_proposes_what_a_fresh_one_does()
    LabelledContract().test_a_running_instance_proposes_what_a_fresh_one_does()  # the stateless one passes


def test_a_pruner_that_stops_good_trials_fails_the_pruner_contract() -> None:
    class AlwaysContract(PrunerContract):
        pruner_name = "kit-always"
        extra_plugins = PLUGIN

    with pytest.raises(AssertionError, match="pruned the best trial so far"):
        AlwaysContract().test_a_trial_better_than_all_before_it_is_never_pruned()


def _dirty(where: str) -> ReporterContract:
    class DirtyContract(ReporterContract):
        reporter_name = f"kit-{where}"
        extra_plugins = PLUGIN

    return DirtyContract()


def test_a_reporter_writing_into_the_run_folder_fails_the_reporter_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AssertionError, match="wrote into the run folder"):
        _dirty("run_dir").test_reports_a_run_writing_only_in_out_dir(tmp_path, monkeypatch)


def test_a_reporter_changing_the_results_fails_the_reporter_contract(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="DataFrame"):
        _dirty("mutate").test_leaves_the_results_unchanged(tmp_path)


def test_the_cell_is_the_runners_failures_and_their_tracebacks() -> None:
    def score(arch: Architecture) -> float:
        if arch["width"] == "narrow":
            raise RuntimeError("no narrow ones")
        return tiny_score(arch)

    cell = run_trials(Labelled(), TinySpace(), 12, score, seed=0)
    rows = pd.DataFrame(cell.trial_rows())
    failed = rows[rows["state"] == "failed"]
    assert len(failed) > 0 and failed["error"].str.contains("RuntimeError: no narrow ones").all()
    assert failed["arch"].str.contains('"narrow"').all()
    assert (rows["state"] == "complete").sum() == len(cell.history()) == 12 - len(failed)
    everything_fails = make_cell(TinySpace(), Labelled(), lambda arch: 1 / 0, seed=0)
    assert everything_fails.run(8) == "failed"  # the runner's limit: five consecutive failures
    assert len(everything_fails.study.trials) == 5


def test_a_table_score_fails_trials_of_missing_architectures() -> None:
    space = TinySpace()
    table = {space.arch_id(a): tiny_score(a) for a in space.enumerate() if a["act"] != "none"}
    cell = run_trials(Labelled(), space, 10, table, seed=3)
    rows = pd.DataFrame(cell.trial_rows())
    assert set(rows[rows["state"] == "failed"]["error"].str.extract(r"(KeyError)")[0]) == {"KeyError"}
    assert all(h.arch["act"] != "none" for h in cell.history())


def test_trial_columns_reach_the_exported_trials_csv(tmp_path: Path) -> None:
    storage = optuna.storages.InMemoryStorage()
    cells = [make_cell(TinySpace(), Labelled(depth=seed), tiny_score, seed=seed, storage=storage) for seed in (0, 1)]
    for cell in cells:
        cell.run(3)
    run_results(tmp_path, cells)
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert trials.groupby("seed")["algo.role"].apply(list).to_dict() == {
        s: ["init", "neighbour", "neighbour"] for s in (0, 1)
    }
    assert trials.groupby("seed")["algo.depth"].first().to_dict() == {0: 0, 1: 1}
    assert list(trials.columns).index("algo.role") > list(trials.columns).index("error")


def test_trial_columns_must_be_json_scalars() -> None:
    class Bad(Labelled):
        def propose(self, trial: optuna.Trial, cell: CellContext) -> Architecture:
            cell.record_trial_column(trial, "where", {"x": 1})  # type: ignore[arg-type]
            return super().propose(trial, cell)

    cell = run_trials(Bad(), TinySpace(), 1, tiny_score)
    (row,) = cell.trial_rows()
    assert row["state"] == "failed" and "trial column 'where': dict is not a JSON scalar" in row["error"]


def test_a_resumed_cell_or_second_worker_gets_another_sampler_seed() -> None:
    """What a third-party sampler sees: the cell seed for a fresh cell's first worker, a seed derived
    from (cell seed, trials stored, worker) otherwise, so no random draw is replayed."""
    seeds: dict[int, int] = {}  # id of a sampler -> the seed its factory got

    class Plugin:
        @hookimpl
        def harness_samplers(self) -> list[Any]:
            from harness.components import SamplerSpec

            def factory(request: Any) -> optuna.samplers.BaseSampler:
                sampler = optuna.samplers.RandomSampler(seed=request.seed)
                seeds[id(sampler)] = request.seed
                return sampler

            return [SamplerSpec(name="kit-seeds", description="x", factory=factory)]

    from harness.registry import load_registry

    registry = load_registry(extra_plugins=[("seeds", Plugin())])
    cell = make_cell(TinySpace(), Labelled(), tiny_score, seed=5, sampler="kit-seeds", registry=registry)
    used = []  # the seed of the sampler each run's study asks with
    for worker_index in (0, 0, 1):
        cell.run(2, worker_index=worker_index)
        used.append(seeds[id(cell.study.sampler)])
    assert used[0] == 5  # a fresh cell's first worker: the cell's seed
    assert len(set(used[1:])) == 2 and 5 not in used[1:]  # a resume, a second worker: their own


class Subset(SpaceGenerator):
    """Keeps the width options the data 'chose' (here: the first ``keep``); ``shuffle`` makes
    ``load`` depend on chance, which the contract must catch."""

    def __init__(self, shuffle: bool = False) -> None:
        self.shuffle = shuffle

    def generate(self, request: GenerationRequest) -> GeneratedSpaceState:
        assert request.data is not None and request.data.test_images.shape[0] > 0
        return GeneratedSpaceState(
            space={"widths": ["medium", "wide"]}, details={"images": len(request.data.train_labels)}
        )

    def load(self, base: SearchSpace, state: dict[str, Any]) -> SearchSpace:
        widths = list(state["widths"])
        if self.shuffle:
            random.shuffle(widths)

        class Narrowed(TinySpace):
            def suggest(self, trial: optuna.Trial) -> Architecture:
                arch = super().suggest(trial)
                return {**arch, "width": trial.suggest_categorical("kept_width", widths)}

        return Narrowed()


class GeneratorPlugin:
    @hookimpl
    def harness_generators(self) -> list[GeneratorSpec]:
        return [
            GeneratorSpec(name="kit-subset", description="x", factory=lambda options: Subset()),
            GeneratorSpec(name="kit-shuffled", description="x", factory=lambda options: Subset(shuffle=True)),
        ]


def test_the_generator_contract_passes_a_deterministic_generator_and_catches_a_random_load() -> None:
    class Good(GeneratorContract):
        generator_name = "kit-subset"
        extra_plugins = [("gen", GeneratorPlugin())]

    class Shuffled(Good):
        generator_name = "kit-shuffled"

    Good().test_generate_returns_a_json_state()
    Good().test_load_is_deterministic_and_gives_a_working_space()
    random.seed(0)  # the shuffle differs between the two loads within a few tries
    with pytest.raises(AssertionError):
        for _ in range(20):
            Shuffled().test_load_is_deterministic_and_gives_a_working_space()


def test_a_contract_selecting_its_plugins_also_gets_the_kits_sampler_and_pruner() -> None:
    from harness.testing._base import ContractBase

    class Selected(ContractBase):
        plugins = ["random"]

    registry = Selected().registry()
    assert registry.names("algorithm") == ["random"]
    assert "random" in registry.names("sampler") and "none" in registry.names("pruner")
    assert Selected.plugins == ["random"]  # the class's own list is left as it was
