"""Search-space generators: components that turn a base (hand-designed) space into the space searched.

A generator is the grid's ``generator`` axis. ``manual`` is the identity (the base space as it is);
``autospace`` (Zhou et al., "AutoSpace: Neural Architecture Search with Less Human Interference",
ICCV 2021) evolves a layer-wise space from the training data. The paper's point is that one
generated space serves any search algorithm, so the harness runs each generation **once per
(generator, base space, dataset, seed)**, stores its JSON result in the run's storage, and every
cell with that key loads it; resumed runs and other workers reuse it, and only one worker ever
generates it (an atomic claim in the storage).

The contract, in order of calls:

1. :meth:`SpaceGenerator.incompatible` -- why the generator cannot work on (base space, dataset),
   or ``None``; a reason makes those cells ``n/a`` with it.
2. :meth:`SpaceGenerator.generate` -- in one worker only: do the work from a
   :class:`GenerationRequest` (the run's train split and validation split, never the test split)
   and return a :class:`GeneratedSpaceState`: the space as JSON plus details for the reports.
3. :meth:`SpaceGenerator.load` -- in every worker and every cell: rebuild a :class:`SearchSpace`
   from the stored JSON. It must be deterministic (same JSON -> same space), cheap, and must not
   touch data.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from harness.components.base import Options
from harness.components.data import ImageData, InputShape

if TYPE_CHECKING:
    from harness.components.data import ImageDataset
    from harness.components.evaluation import TabularBenchmark
    from harness.components.spaces import SearchSpace

__all__ = ["GeneratedSpaceState", "GenerationRequest", "SpaceGenerator"]


@dataclass(frozen=True)
class GenerationRequest:
    """What :meth:`SpaceGenerator.generate` gets.

    ``data`` holds the run's train split in ``train_*`` and its *validation* split in ``test_*``
    (the real test split is never handed to a generator), exactly as search algorithms see it.
    It is ``None`` when the cell's dataset is a tabular benchmark and no ``--generator-data``
    image dataset was named. ``shape`` is the input shape of the cells' dataset (what the
    generated space must build models for); ``data.shape`` may differ when generation trains on
    another dataset. ``seed`` is the cell's seed; ``device`` is ``cpu`` or ``cuda[:N]``;
    ``options`` holds every parsed option (``harness_addoption`` defaults included).
    ``progress(done, total)``: call it as the work advances (e.g. once per training iteration);
    the harness shows it (a progress bar on a terminal, the run's log otherwise).
    """

    base: SearchSpace
    base_name: str
    dataset: str
    data: ImageData | None
    shape: InputShape
    seed: int
    device: str
    options: Options
    progress: Callable[[int, int], None] = field(default=lambda done, total: None, repr=False, compare=False)


@dataclass
class GeneratedSpaceState:
    """The result of one generation, stored as JSON in the run's storage.

    ``space`` is whatever :meth:`SpaceGenerator.load` needs to rebuild the space (JSON types only).
    ``details`` goes to the cell table and the reports (e.g. the generated cells and their scores,
    the constants used); keep it small and JSON-serialisable. The harness measures and records the
    generation's wall time itself.
    """

    space: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


class SpaceGenerator(ABC):
    """Turns a base space into the space a cell searches (see the module docstring)."""

    #: ``False`` for generators that only transform the base space without data or compute
    #: (``manual``): the harness then skips the stored-generation machinery entirely.
    generates: bool = True
    #: ``False`` for a generator that generates without training (a control that draws at random):
    #: on a table dataset it then needs no ``--generator-data`` image dataset.
    trains_on_images: bool = True

    def incompatible(self, base: SearchSpace, dataset: ImageDataset | TabularBenchmark) -> str | None:
        """Why this generator cannot work on ``base`` with ``dataset``, or ``None``."""
        return None

    def capabilities(self, base: SearchSpace) -> frozenset[str]:
        """The capabilities (see :class:`SearchSpace`) of the spaces this generator makes from
        ``base``, known before generation so that the grid can show cells whose algorithm needs a
        missing one as ``n/a``. Default: those of ``base``."""
        return base.capabilities

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GeneratedSpaceState:
        """Generate the space (called once per generation key, in one worker)."""

    @abstractmethod
    def load(self, base: SearchSpace, state: dict[str, Any]) -> SearchSpace:
        """The :class:`SearchSpace` described by ``state`` (the ``space`` of a stored
        :class:`GeneratedSpaceState`), built over ``base``."""
