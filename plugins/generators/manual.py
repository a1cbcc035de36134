"""The ``manual`` generator: the hand-designed base space, unchanged.

Registered as plugin ``manual`` like every other built-in, and loaded in every run
(``HARNESS_ALWAYS_LOAD``: ``--plugins`` cannot drop it): a grid always has a generator axis, and
this is its identity. It is the baseline of the brief's
headline comparison (manual vs generated space): the same cells with ``--generators
manual,autospace`` differ only in the space searched.
"""
from __future__ import annotations

from typing import Any

from harness import hookimpl
from harness.components import (
    GeneratedSpaceState,
    GenerationRequest,
    GeneratorSpec,
    Options,
    SearchSpace,
    SpaceGenerator,
)

__all__ = ["HARNESS_ALWAYS_LOAD", "ManualGenerator", "harness_generators"]

#: Loaded even when ``--plugins`` does not name it: every grid needs its generator axis's identity.
HARNESS_ALWAYS_LOAD = True


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
