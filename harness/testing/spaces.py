"""Contract for search-space plugins."""
from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import optuna
import torch

from harness.components import InputShape, SearchSpace
from harness.measure import madds_of_builder
from harness.testing._base import ContractBase

__all__ = ["SpaceContract"]


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
            assert madds_of_builder(lambda: space.build(arch, self.shape), self.shape) > 0

    def test_optional_capabilities_work(self) -> None:
        space = self.make_space()
        rng = np.random.default_rng(0)
        caps = space.capabilities
        if "sample" in caps:
            arch = space.sample(rng)
            assert space.build(arch, self.shape) is not None
            if "mutate" in caps:
                assert space.arch_id(space.mutate(arch, rng)) != space.arch_id(arch)
        if "enumerate" in caps:
            ids = [space.arch_id(a) for a in space.enumerate()]
            assert len(ids) == len(set(ids)) > 0
        if "encode" in caps and "sample" in caps:
            a, b = space.sample(rng), space.sample(rng)
            same = space.arch_id(a) == space.arch_id(b)
            assert np.array_equal(space.encode(a), space.encode(b)) == same
