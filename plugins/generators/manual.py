"""The ``manual`` generator: the hand-designed base space, unchanged.

Part of the core, registered as plugin ``manual`` in every run (``--plugins`` cannot drop it): a
grid always has a generator axis, and this is its identity. It is the baseline of the brief's
headline comparison (manual vs generated space): the same cells with ``--generators
manual,autospace`` differ only in the space searched.
"""
from __future__ import annotations

from typing import Any

from harness import __version__, hookimpl
from harness.components import (
    GeneratedSpaceState,
    GenerationRequest,
    GeneratorSpec,
    Options,
    SearchSpace,
    SpaceGenerator,
)

__all__ = ["ManualGenerator", "harness_generators"]

__version__ = __version__  # a core plugin: the harness's own version in `harness list`


class ManualGenerator(SpaceGenerator):
    """The identity: generates nothing, costs nothing, returns the base space itself."""

    generates = False

    def generate(self, request: GenerationRequest) -> GeneratedSpaceState:
        return GeneratedSpaceState(space={})

    def load(self, base: SearchSpace, state: dict[str, Any]) -> SearchSpace:
        return base


def _manual(options: Options) -> SpaceGenerator:
    return ManualGenerator()


@hookimpl
def harness_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(name="manual", description="the hand-designed base space, unchanged (identity)",
                          factory=_manual)]
