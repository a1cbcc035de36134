"""Contract for search-space plugins."""

from __future__ import annotations

import functools
import json
from typing import ClassVar

import numpy as np
import optuna
import pytest
import torch

from harness.components import InputShape, SearchSpace
from harness.measure import madds_of_builder
from harness.testing._base import ContractBase

__all__ = ["OPTIONAL_CAPABILITIES", "SpaceContract"]

#: The optional capabilities a space may announce (see :class:`harness.components.SearchSpace`).
OPTIONAL_CAPABILITIES = frozenset(
    {"sample", "mutate", "enumerate", "encode", "graph", "decisions", "supernet", "cells"}
)


class SpaceContract(ContractBase):
    """Set ``space_name``; ``shape`` is the input the models are built for."""

    space_name: ClassVar[str]
    shape: ClassVar[InputShape] = InputShape(3, 16, 16, 10)

    def make_space(self) -> SearchSpace:
        return self.registered("space", self.space_name).spec.factory(self.options)

    def _suggested(self, n: int = 4) -> list[dict]:
        space = self.make_space()
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        archs = []
        for _ in range(n):
            trial = study.ask()
            archs.append(space.suggest(trial))
            study.tell(trial, 0.0)
        return archs

    def test_suggested_architectures_are_json(self) -> None:
        space = self.make_space()
        for arch in self._suggested():
            assert json.loads(json.dumps(arch)) == arch
            assert space.arch_id(json.loads(json.dumps(arch))) == space.arch_id(arch)

    def test_models_give_logits_and_have_madds(self) -> None:
        space = self.make_space()
        for arch in self._suggested(3):
            model = space.build(arch, self.shape)
            logits = model.eval()(torch.randn(2, self.shape.channels, self.shape.height, self.shape.width))
            assert logits.shape == (2, self.shape.num_classes)
            assert madds_of_builder(functools.partial(space.build, arch, self.shape), self.shape) > 0

    def test_capabilities_are_known_names(self) -> None:
        caps = self.make_space().capabilities
        assert isinstance(caps, frozenset) and caps <= OPTIONAL_CAPABILITIES, sorted(caps - OPTIONAL_CAPABILITIES)

    def test_decisions_name_the_architecture_keys(self) -> None:
        space = self.make_space()
        if "decisions" not in space.capabilities:
            pytest.skip("the space has no decision list")
        decisions = dict(space.decisions())
        archs = self._suggested(3)
        if "sample" in space.capabilities:
            archs.append(space.sample(np.random.default_rng(0)))
        for arch in archs:
            assert set(arch) == set(decisions), "decisions() must name exactly the architecture dict's keys"
            for name, value in arch.items():
                assert value in list(decisions[name]), (name, value)

    def test_optional_capabilities_work(self) -> None:
        space = self.make_space()
        rng = np.random.default_rng(0)
        caps = space.capabilities
        if not caps & {"sample", "enumerate", "encode", "graph"}:
            pytest.skip("the space announces no capability this test checks")
        if "sample" in caps:
            arch = space.sample(rng)
            assert space.build(arch, self.shape) is not None
            if "mutate" in caps:
                assert space.arch_id(space.mutate(arch, rng)) != space.arch_id(arch)
        if "enumerate" in caps:
            ids = [space.arch_id(a) for a in space.enumerate()]
            assert len(ids) == len(set(ids)) > 0
        if "encode" in caps:
            archs = [space.sample(rng) for _ in range(6)] if "sample" in caps else self._suggested(6)
            codes = [np.asarray(space.encode(a)) for a in archs]
            assert len({c.shape for c in codes}) == 1, "encodings must have one fixed length"
            for a, ca in zip(archs, codes):
                for b, cb in zip(archs, codes):
                    assert np.array_equal(ca, cb) == (space.arch_id(a) == space.arch_id(b))
        if "graph" in caps:
            arch = space.sample(rng) if "sample" in caps else self._suggested(1)[0]
            adjacency, features = space.graph(arch)
            assert adjacency.ndim == 2 and adjacency.shape[0] == adjacency.shape[1] == features.shape[0]
