"""One step builds a cell (``harness.assembly``): what it returns, how plugin errors are handled,
that each factory runs once per cell and process, and the registry's typed facade."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest

from harness import hookimpl
from harness.assembly import CellAssembler, CellSetup, CellUnavailable, assemble_cell
from harness.components import AlgorithmSpec, PrunerSpec, SamplerSpec, SpaceSpec
from harness.config import RunConfig
from harness.errors import PluginError, UsageError
from harness.grid import Cell
from harness.registry import load_registry
from harness.runner import run_bench
from tests.harness_tests.plugins_support import ToySpace


def _config(tmp_path: Path, **kw: Any) -> RunConfig:
    base: dict[str, Any] = dict(datasets=["digits"], spaces=["toy"], algorithms=["counted"], samplers=["random"],
                                pruners=["none"], seeds=[0], trials=2, epochs=1, results=str(tmp_path),
                                max_per_class=10, progress=False, device="cpu")
    base.update(kw)
    return RunConfig(**base)


class Counting:
    """A plugin whose every factory counts its calls; ``fail`` names a kind whose factory raises."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.fail = fail

    def _made(self, kind: str, value: Any) -> Any:
        self.calls[kind] += 1
        if kind == self.fail:
            raise RuntimeError(f"the {kind} factory is broken")
        return value

    @hookimpl
    def harness_spaces(self) -> list[Any]:
        return [SpaceSpec(name="toy", description="toy", factory=lambda options: self._made("space", ToySpace()))]

    @hookimpl
    def harness_algorithms(self) -> list[Any]:
        from harness_plugins.algorithms.sampler import SamplerDecides

        return [AlgorithmSpec(name="counted", description="x",
                              factory=lambda options: self._made("algorithm", SamplerDecides()))]

    @hookimpl
    def harness_samplers(self) -> list[Any]:
        return [SamplerSpec(name="counted-random", description="x",
                            factory=lambda r: self._made("sampler", optuna.samplers.RandomSampler(seed=r.seed)))]

    @hookimpl
    def harness_pruners(self) -> list[Any]:
        return [PrunerSpec(name="counted-median", description="x",
                           factory=lambda r: self._made("pruner", optuna.pruners.MedianPruner()))]


def test_a_complete_setup_holds_components_sampler_pruner_and_directions(tmp_path: Path) -> None:
    plugin = Counting()
    registry = load_registry(extra_plugins=[("counting", plugin)])
    config = _config(tmp_path, samplers=["counted-random"], pruners=["counted-median"])
    setup = assemble_cell(Cell("digits", "manual", "toy", "counted", "counted-random", "counted-median", 3), config,
                          registry)
    assert isinstance(setup, CellSetup)
    assert isinstance(setup.base_space, ToySpace) and isinstance(setup.pruner, optuna.pruners.MedianPruner)
    assert setup.directions == ["maximize"] and not setup.tabular
    # the sampler built at assembly is the one a fresh cell's first worker gets; any other seed a new one
    first = setup.sampler(3)
    assert setup.sampler(3) is not first and setup.sampler(4) is not first
    assert plugin.calls == Counter(space=1, algorithm=1, sampler=3, pruner=1)


def test_a_multi_objective_sampler_gives_two_directions_and_a_pruner_makes_the_cell_na(tmp_path: Path) -> None:
    registry = load_registry(extra_plugins=[("counting", Counting())])
    config = _config(tmp_path, samplers=["nsga2"])
    setup = assemble_cell(Cell("digits", "manual", "toy", "counted", "nsga2", "none", 0), config, registry)
    assert isinstance(setup, CellSetup) and setup.directions == ["maximize", "minimize"]
    na = assemble_cell(Cell("digits", "manual", "toy", "counted", "nsga2", "median", 0), config, registry)
    assert isinstance(na, CellUnavailable) and na.kind == "n/a" and "multi-objective" in na.reason


@pytest.mark.parametrize("kind", ["space", "algorithm", "sampler", "pruner"])
def test_a_raising_factory_makes_the_cell_failed_naming_the_step(tmp_path: Path, kind: str) -> None:
    registry = load_registry(extra_plugins=[("counting", Counting(fail=kind))])
    config = _config(tmp_path, samplers=["counted-random"], pruners=["counted-median"])
    out = assemble_cell(Cell("digits", "manual", "toy", "counted", "counted-random", "counted-median", 0), config,
                        registry)
    assert isinstance(out, CellUnavailable) and out.kind == "failed"
    assert out.reason.startswith(f"{kind} ") and f"the {kind} factory is broken" in out.reason
    assert out.reason.splitlines()[0].endswith("(plugin 'counting') failed:")  # whose code it is


def test_the_sampler_factory_does_not_run_for_a_cell_that_is_n_a(tmp_path: Path) -> None:
    """A multi-objective sampler with a pruner is ``n/a``: its factory is never called (a raising
    one would otherwise turn an ``n/a`` cell into a failed one)."""
    class MultiObjective(Counting):
        @hookimpl
        def harness_samplers(self) -> list[Any]:
            return [SamplerSpec(name="counted-mo", description="x", multi_objective=True,
                                factory=lambda r: self._made("sampler", optuna.samplers.NSGAIISampler(seed=r.seed)))]

    for fail in (None, "sampler"):
        plugin = MultiObjective(fail=fail)
        registry = load_registry(extra_plugins=[("counting", plugin)])
        config = _config(tmp_path, samplers=["counted-mo"], pruners=["counted-median"])
        out = assemble_cell(Cell("digits", "manual", "toy", "counted", "counted-mo", "counted-median", 0), config,
                            registry)
        assert isinstance(out, CellUnavailable) and out.kind == "n/a" and "multi-objective" in out.reason
        assert plugin.calls["sampler"] == 0


def test_a_usage_error_of_a_factory_stops_the_run(tmp_path: Path) -> None:
    class Strict:
        @hookimpl
        def harness_spaces(self) -> list[Any]:
            def factory(options: Any) -> Any:
                raise UsageError("--width: must be positive")

            return [SpaceSpec(name="toy", description="x", factory=factory)]

    registry = load_registry(extra_plugins=[("strict", Strict()), ("counting-algo", _AlgorithmOnly())])
    with pytest.raises(UsageError, match="--width"):
        assemble_cell(Cell("digits", "manual", "toy", "counted", "random", "none", 0), _config(tmp_path), registry)


class _AlgorithmOnly:
    @hookimpl
    def harness_algorithms(self) -> list[Any]:
        from harness_plugins.algorithms.sampler import SamplerDecides

        return [AlgorithmSpec(name="counted", description="x", factory=lambda options: SamplerDecides())]


def test_a_factory_returning_the_wrong_type_is_a_plugin_error_naming_the_plugin(tmp_path: Path) -> None:
    class Wrong:
        @hookimpl
        def harness_spaces(self) -> list[Any]:
            return [SpaceSpec(name="toy", description="x", factory=lambda options: object())]

    registry = load_registry(extra_plugins=[("wrong", Wrong())])
    with pytest.raises(PluginError, match="plugin 'wrong'.*space 'toy' returned object"):
        registry.space("toy", {})


def test_the_assembler_builds_each_cell_and_dataset_once(tmp_path: Path) -> None:
    plugin = Counting()
    registry = load_registry(extra_plugins=[("counting", plugin)])
    assembler = CellAssembler(_config(tmp_path), registry)
    cell = Cell("digits", "manual", "toy", "counted", "random", "none", 0)
    assert assembler.assemble(cell) is assembler.assemble(cell)
    assert assembler.dataset("digits") is assembler.dataset("digits")
    assert plugin.calls == Counter(space=1, algorithm=1)


@pytest.mark.slow
def test_a_run_calls_each_factory_once_per_cell(tmp_path: Path) -> None:
    """Planning, the worker and the trials share one assembly per cell in a single-process run."""
    plugin = Counting()
    registry = load_registry(extra_plugins=[("counting", plugin)])
    config = _config(tmp_path, samplers=["counted-random"], pruners=["counted-median"], seeds=[0, 1])
    results = run_bench(config, registry)
    assert results.cells["state"].tolist() == ["done", "done"]
    assert plugin.calls == Counter(space=2, algorithm=2, sampler=2, pruner=2)


def test_no_core_module_names_a_plugin_or_touches_pluggy_outside_the_registry() -> None:
    """The core decides nothing by a plugin's name, and only the registry calls the plugin manager."""
    import re

    core = Path(__file__).resolve().parents[2] / "harness"
    offenders = []
    for path in core.rglob("*.py"):
        if path.parent.name == "testing" or path.name in ("registry.py",):
            continue
        text = path.read_text()
        if re.search(r"\.pm\.|pm\.hook|get_hookimpls", text):
            offenders.append(f"{path.name}: plugin manager")
        if re.search(r"==\s*\"(sampler|manual|compare)\"|\"(sampler|manual|compare)\"\s*(in|==)", text):
            offenders.append(f"{path.name}: a plugin name in a decision")
    assert offenders == []
