"""Contract for search-algorithm plugins, run on a real cell (:mod:`harness.testing.cells`)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import optuna

from harness.components import Architecture, ImageData, SearchAlgorithm, SearchSpace
from harness.testing._base import ContractBase
from harness.testing.cells import KitCell, Score
from harness.testing.toys import TinySpace, tiny_score

__all__ = ["AlgorithmContract"]

_KNOWN_CAPABILITIES = frozenset({"sample", "mutate", "enumerate", "encode", "graph", "decisions", "supernet"})


class AlgorithmContract(ContractBase):
    """Set ``algorithm_name``. By default the algorithm searches :class:`harness.testing.TinySpace`
    scored by :func:`harness.testing.tiny_score`; set ``space_name`` (a registered space) and
    override :meth:`score` to use another, and :meth:`data` for one-shot algorithms that train.

    The checks: the factory works with the default options; ``incompatible`` names missing
    capabilities; trials run through the runner's loop and store JSON architectures; and, unless
    ``deterministic = False``, the algorithm keeps no state it cannot rebuild from the cell: after
    another worker (a fresh instance) added trials, the first instance proposes what a fresh one
    does for the same trial.
    """

    algorithm_name: ClassVar[str]
    space_name: ClassVar[str | None] = None
    n_trials: ClassVar[int] = 8
    deterministic: ClassVar[bool] = True

    def make_algorithm(self) -> SearchAlgorithm:
        return self.registered("algorithm", self.algorithm_name).spec.factory(self.options)

    def make_space(self) -> SearchSpace:
        if self.space_name is None:
            return TinySpace()
        return self.registered("space", self.space_name).spec.factory(self.options)

    def score(self, space: SearchSpace) -> Score:
        """What scores the trials: ``arch -> accuracy`` or ``{arch_id: accuracy}``. The default,
        for another space than TinySpace, is a fixed pseudo-random accuracy per arch id."""
        if isinstance(space, TinySpace):
            return tiny_score

        def hashed(arch: Architecture) -> float:
            import hashlib

            digest = hashlib.sha256(space.arch_id(arch).encode()).hexdigest()
            return int(digest[:8], 16) / 2**32

        return hashed

    def data(self) -> ImageData | None:
        """Search data (``cell.data()``); ``None``, as for a tabular benchmark, by default."""
        return None

    def make_cell(self, seed: int = 0, algorithm: SearchAlgorithm | None = None, **kwargs: Any) -> KitCell:
        space = self.make_space()
        return KitCell(
            space,
            algorithm or self.make_algorithm(),
            self.score(space),
            seed=seed,
            registry=self.registry(),
            options=self.options,
            data=self.data(),
            names={"algorithm": self.algorithm_name},
            **kwargs,
        )

    def test_factory_builds_an_algorithm_with_the_default_options(self) -> None:
        algorithm = self.make_algorithm()
        assert isinstance(algorithm, SearchAlgorithm)
        assert isinstance(algorithm.requires, frozenset)
        assert algorithm.requires <= _KNOWN_CAPABILITIES, sorted(algorithm.requires - _KNOWN_CAPABILITIES)

    def test_incompatible_names_what_a_space_lacks(self) -> None:
        algorithm = self.make_algorithm()
        space = self.make_space()
        assert algorithm.incompatible(space, None) is None, "the contract's own space must be compatible"  # type: ignore[arg-type]

        class Bare(type(space)):  # type: ignore[misc]
            capabilities: ClassVar[frozenset[str]] = frozenset()

        bare = Bare.__new__(Bare)
        bare.__dict__.update(space.__dict__)
        reason = algorithm.incompatible(bare, None)  # type: ignore[arg-type]
        if algorithm.requires:
            assert isinstance(reason, str) and reason and "\n" not in reason, reason
            assert any(cap in reason for cap in algorithm.requires), reason
        else:
            assert reason is None or (isinstance(reason, str) and "\n" not in reason)

    def test_trials_run_through_the_runner_and_store_json_architectures(self) -> None:
        cell = self.make_cell(seed=0)
        assert cell.run(self.n_trials) == "done", [r["error"] for r in cell.trial_rows() if r["error"]]
        history = cell.history()
        assert [h.number for h in history] == list(range(self.n_trials))
        assert all(h.state == "complete" for h in history)
        if getattr(cell.algorithm, "unique_architectures", False):
            ids = [h.arch_id for h in history]
            assert len(ids) == len(set(ids)), "unique_architectures = True, but an architecture was proposed twice"
        for h in history:
            assert json.loads(json.dumps(h.arch)) == h.arch
            assert cell.space.arch_id(h.arch) == h.arch_id
        for row in cell.trial_rows():  # record_trial_column: JSON scalars under algo.*
            for key, value in row.items():
                if key.startswith("algo."):
                    assert value is None or isinstance(value, (str, int, float, bool)), (key, value)

    def test_a_running_instance_proposes_what_a_fresh_one_does(self) -> None:
        if not self.deterministic:
            import pytest

            pytest.skip("deterministic = False: proposals are not a function of the cell")
        half = max(1, self.n_trials // 2)
        first = self.make_algorithm()
        cell = self.make_cell(seed=1, algorithm=first)
        assert cell.run(half) == "done"
        # another worker (a fresh instance, its own sampler seed) adds trials meanwhile
        assert cell.run(half, algorithm=self.make_algorithm(), worker_index=1) == "done"
        assert len(cell.history()) == 2 * half
        fresh = self.make_algorithm()
        fresh.prepare(cell.context)
        trial = cell.ask()
        try:
            expected = fresh.propose(trial, cell.context)
            got = first.propose(trial, cell.context)
        finally:
            cell.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        assert cell.space.arch_id(got) == cell.space.arch_id(expected), (
            "the first instance proposes from state the cell does not hold (it must rebuild it from cell.history())"
        )
