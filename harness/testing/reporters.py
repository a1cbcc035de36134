"""Contract for reporter plugins, run on results exported from real cells (:func:`sample_results`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import optuna
import pandas as pd
import pytest

from harness.components import Architecture, Reporter, RunResults, SearchAlgorithm
from harness.registry import Registry
from harness.testing._base import ContractBase
from harness.testing.cells import DEFAULT_SHAPE, KitCell, run_results
from harness.testing.toys import TinySpace, tiny_score

__all__ = ["ReporterContract", "sample_results"]


class _Suggest(SearchAlgorithm):
    """The sampler decides the architecture (as the built-in ``sampler`` algorithm)."""

    def propose(self, trial: optuna.Trial, cell: object) -> Architecture:
        return cell.space.suggest(trial)  # type: ignore[attr-defined]


class _Random(SearchAlgorithm):
    requires = frozenset({"sample"})

    def propose(self, trial: optuna.Trial, cell: object) -> Architecture:
        return cell.space.sample(np.random.default_rng([cell.seed, trial.number]))  # type: ignore[attr-defined]


def _flaky_score(arch: Architecture) -> float:
    if arch["width"] == "narrow" and arch["act"] == "none":
        raise RuntimeError("this architecture cannot be evaluated")
    return tiny_score(arch)


def sample_results(run_dir: Path, registry: Registry | None = None, trials: int = 6, empty: bool = False) -> RunResults:
    """A small run's results, exported as ``harness bench`` exports them: two algorithms x two
    seeds on :class:`harness.testing.TinySpace` (complete trials, some failed ones with their
    traceback, simulated costs, MAdds), a multi-objective cell, and an ``n/a`` cell. With
    ``empty``, the same grid before any trial ran (every cell ``n/a`` or pending)."""
    storage = optuna.storages.InMemoryStorage()
    space = TinySpace()

    def madds(arch: Architecture) -> float:
        return space.madds(arch, DEFAULT_SHAPE)

    cells = []
    if not empty:
        for name, algorithm in (("kit-suggest", _Suggest()), ("kit-random", _Random())):
            for seed in (0, 1):
                cell = KitCell(
                    space,
                    algorithm,
                    _flaky_score,
                    seed=seed,
                    storage=storage,
                    registry=registry,
                    madds=madds,
                    seconds=30.0,
                    names={"algorithm": name, "space": "tiny"},
                )
                cell.run(trials)
                cells.append(cell)
        multi = KitCell(
            space,
            _Suggest(),
            tiny_score,
            seed=0,
            sampler="nsga2",
            storage=storage,
            registry=registry,
            madds=madds,
            seconds=30.0,
            names={"algorithm": "kit-suggest", "space": "tiny"},
        )
        multi.run(trials)
        cells.append(multi)
    na = (
        {
            "dataset": "kit-data",
            "space": "tiny",
            "algorithm": "kit-suggest",
            "sampler": "nsga2",
            "pruner": "median",
            "seed": 0,
        },
        "sampler nsga2 is multi-objective: pruners need one objective",
    )
    return run_results(run_dir, cells, not_applicable=[na])


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class ReporterContract(ContractBase):
    """Set ``reporter_name``. The checks: the factory works with the default options; the
    reporter renders a real run's results (:func:`sample_results`) and an empty run, from the
    results alone (no other reporter's files exist), writes only under ``out_dir``, and leaves the
    results unchanged (reporters run one after another on the same tables). Unless
    ``deterministic = False``, the same results give the same text and the same files."""

    reporter_name: ClassVar[str]
    deterministic: ClassVar[bool] = True

    def make_reporter(self) -> Reporter:
        return self.registered("reporter", self.reporter_name).spec.factory(self.options)

    def make_results(self, run_dir: Path, empty: bool = False) -> RunResults:
        """The results the reporter is run on; override to add what your reporter reads."""
        return sample_results(run_dir, self.registry(), empty=empty)

    def test_factory_builds_a_reporter_with_the_default_options(self) -> None:
        assert isinstance(self.make_reporter(), Reporter)

    def test_reports_a_run_writing_only_in_out_dir(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        results = self.make_results(tmp_path / "run")
        run_files = _files(results.run_dir)
        out = tmp_path / "out"
        out.mkdir()
        self.make_reporter().report(results, out)
        assert _files(results.run_dir) == run_files, "the reporter wrote into the run folder, not out_dir"
        assert not any(cwd.iterdir()), f"the reporter wrote into the working directory: {list(cwd.iterdir())}"

    def test_leaves_the_results_unchanged(self, tmp_path: Path) -> None:
        results = self.make_results(tmp_path / "run")
        trials, cells = results.trials.copy(deep=True), results.cells.copy(deep=True)
        out = tmp_path / "out"
        out.mkdir()
        self.make_reporter().report(results, out)
        pd.testing.assert_frame_equal(results.trials, trials)
        pd.testing.assert_frame_equal(results.cells, cells)

    def test_reports_an_empty_run(self, tmp_path: Path) -> None:
        results = self.make_results(tmp_path / "run", empty=True)
        assert len(results.trials) == 0
        out = tmp_path / "out"
        out.mkdir()
        assert isinstance(self.make_reporter().report(results, out), str)

    def test_same_results_same_output(self, tmp_path: Path) -> None:
        if not self.deterministic:
            pytest.skip("deterministic = False")
        results = self.make_results(tmp_path / "run")
        outputs = []
        for name in ("a", "b"):
            out = tmp_path / "out" / name
            out.mkdir(parents=True)
            text = self.make_reporter().report(results, out)
            assert isinstance(text, str)
            outputs.append((text.replace(str(out), "OUT"), _files(out)))
        assert outputs[0] == outputs[1]
