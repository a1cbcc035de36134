"""Contract for search-space generator plugins (the ``generator`` grid axis)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import optuna
import torch

from harness.components import (
    Architecture,
    DatasetRequest,
    GeneratedSpaceState,
    GenerationRequest,
    ImageData,
    ImageDataset,
    InputShape,
    SearchSpace,
    SpaceGenerator,
)
from harness.testing._base import ContractBase
from harness.testing.toys import TinySpace, tiny_image_data

__all__ = ["GeneratorContract"]


class _TinyDataset(ImageDataset):
    def __init__(self, data: ImageData) -> None:
        self._data = data

    def load(self, request: DatasetRequest) -> ImageData:
        return self._data


def _suggested(space: SearchSpace, n: int) -> list[Architecture]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    archs = []
    for _ in range(n):
        trial = study.ask()
        archs.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return archs


class GeneratorContract(ContractBase):
    """Set ``generator_name``, and ``base_space_name`` (a registered space; ``None``:
    :class:`harness.testing.TinySpace`). Generation runs on :meth:`data` (tiny random images by
    default); set ``options`` to keep it short (your generator's budget options).

    The checks: ``incompatible`` returns a one-line reason or ``None``; ``generate`` returns a
    JSON-serialisable :class:`GeneratedSpaceState`; ``load`` of its (JSON round-tripped) space is
    deterministic and gives a space whose architectures are JSON and build models with the right
    output; a generator with ``generates = False`` works without data.
    """

    generator_name: ClassVar[str]
    base_space_name: ClassVar[str | None] = None
    seed: ClassVar[int] = 0

    def make_generator(self) -> SpaceGenerator:
        return self.registered("generator", self.generator_name).spec.factory(self.options)

    def make_base(self) -> SearchSpace:
        if self.base_space_name is None:
            return TinySpace()
        return self.registered("space", self.base_space_name).spec.factory(self.options)

    def data(self) -> ImageData:
        return tiny_image_data(channels=3, size=8)

    def request(self, data: ImageData | None) -> GenerationRequest:
        shape = data.shape if data is not None else InputShape(3, 8, 8, 3)
        return GenerationRequest(
            base=self.make_base(),
            base_name=self.base_space_name or "tiny",
            dataset="kit-data",
            data=data,
            shape=shape,
            seed=self.seed,
            device="cpu",
            options=self.options,
        )

    def _generated(self) -> tuple[SpaceGenerator, GeneratedSpaceState, GenerationRequest]:
        generator = self.make_generator()
        request = self.request(self.data())
        return generator, generator.generate(request), request

    def test_incompatible_is_a_one_line_reason_or_none(self) -> None:
        reason = self.make_generator().incompatible(self.make_base(), _TinyDataset(self.data()))
        assert reason is None or (isinstance(reason, str) and reason and "\n" not in reason), reason

    def test_generate_returns_a_json_state(self) -> None:
        _, state, _ = self._generated()
        assert isinstance(state, GeneratedSpaceState)
        assert isinstance(state.space, dict) and isinstance(state.details, dict)
        assert json.loads(json.dumps(state.space)) == state.space, "state.space must be JSON"
        assert json.loads(json.dumps(state.details)) == state.details, "state.details must be JSON"

    def test_load_is_deterministic_and_gives_a_working_space(self) -> None:
        generator, state, request = self._generated()
        stored: dict[str, Any] = json.loads(json.dumps(state.space))  # what the storage gives back
        first, second = self.make_generator().load(request.base, stored), generator.load(request.base, stored)
        assert isinstance(first, SearchSpace) and isinstance(second, SearchSpace)
        assert first.capabilities == second.capabilities
        archs = _suggested(first, 3)
        assert [first.arch_id(a) for a in archs] == [second.arch_id(a) for a in _suggested(second, 3)]
        if "sample" in first.capabilities:
            assert first.arch_id(first.sample(np.random.default_rng(0))) == second.arch_id(
                second.sample(np.random.default_rng(0))
            )
            archs.append(first.sample(np.random.default_rng(1)))
        shape = request.shape
        for arch in archs:
            assert json.loads(json.dumps(arch)) == arch
            model = first.build(arch, shape).eval()
            with torch.no_grad():
                logits = model(torch.randn(2, shape.channels, shape.height, shape.width))
            assert logits.shape == (2, shape.num_classes)

    def test_a_generator_that_generates_nothing_needs_no_data(self) -> None:
        generator = self.make_generator()
        if generator.generates:
            import pytest

            pytest.skip("this generator generates (it gets data)")
        request = self.request(None)
        state = generator.generate(request)
        space = generator.load(request.base, json.loads(json.dumps(state.space)))
        assert [space.arch_id(a) for a in _suggested(space, 3)] == [
            request.base.arch_id(a) for a in _suggested(request.base, 3)
        ]
