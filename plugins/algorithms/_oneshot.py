"""What the one-shot searches (``rl`` shared mode, ``gradient``) share: data on the device,
endless seeded batch streams, seeded supernet construction and shared-weight accuracy.

Data contract (from the core): ``cell.data()`` returns an :class:`ImageData` whose ``train_*``
fields are the search's training split and whose ``test_*`` fields hold the cell's *validation*
split (never the real test split), so searches select on validation data only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from harness.components import Architecture, CellContext, ImageData, InputShape, SearchSpace
from harness.supernet import Supernet
from harness.training.batches import DeviceData, Normaliser, iterate_batches

__all__ = [
    "SKIP_LIKE", "SearchData", "batch_stream", "build_supernet", "derived_arch", "search_once", "seeded_generator",
    "shared_accuracy", "skip_fraction",
]

#: Options that remove a layer's computation; their share in a derived arch shows collapse.
SKIP_LIKE = frozenset({"skip", "skip_connect", "none", "zero", "identity"})

#: Architectures a one-shot search scores with its shared weights once it is done, so that its
#: ranking can be compared with stand-alone accuracy (Kendall's τ against a benchmark table; 30 is
#: the smallest sample the weight-sharing literature reports τ on).
RANKING_SAMPLES = 30
#: Validation images each of them is scored on (as ENAS's derivation scores its candidates).
RANKING_IMAGES = 1024


@dataclass
class SearchData:
    """Train and validation splits on the search device, normalised with train statistics."""

    train: DeviceData
    valid: DeviceData
    normaliser: Normaliser
    augment: bool

    @classmethod
    def create(cls, data: ImageData, device: str | torch.device) -> SearchData:
        return cls(
            DeviceData.create(data.train_images, data.train_labels, device),
            DeviceData.create(data.test_images, data.test_labels, device),
            Normaliser.fit(data.train_images).to(device),
            data.augment,
        )


def batch_stream(data: DeviceData, batch_size: int, normaliser: Normaliser, generator: torch.Generator,
                 augment: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches forever (a fresh permutation each pass); full batches only, because
    BatchNorm in training mode needs more than one sample."""
    size = min(batch_size, len(data))
    while True:
        yield from iterate_batches(data, size, normaliser, shuffle=True, augment=augment,
                                   generator=generator, drop_last=True)


def build_supernet(space: SearchSpace, shape: InputShape, seed: int, device: str | torch.device) -> Supernet:
    """The space's supernet, initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = space.supernet(shape)
    if not isinstance(net, Supernet):
        raise TypeError(f"{type(space).__name__}.supernet() must return a harness.supernet.Supernet")
    return net.to(device)


@torch.no_grad()
def shared_accuracy(forward: Callable[[torch.Tensor], torch.Tensor], data: DeviceData, normaliser: Normaliser,
                    batch_size: int = 512, limit: int | None = None) -> float:
    """Accuracy of ``forward`` on (the first ``limit`` images of) ``data``. The caller chooses
    the BatchNorm mode; ENAS scores shared-weight children with batch statistics."""
    correct = total = 0
    for x, y in iterate_batches(data, batch_size, normaliser, shuffle=False):
        correct += int((forward(x).argmax(dim=1) == y).sum())
        total += int(y.shape[0])
        if limit is not None and total >= limit:
            break
    return correct / max(total, 1)


def skip_fraction(arch: Mapping[str, Any], decisions: Sequence[tuple[str, Sequence[Any]]]) -> float:
    """Share of decisions whose choice removes computation (skip / none): 1.0 is full collapse."""
    return sum(str(arch[name]) in SKIP_LIKE for name, _ in decisions) / max(len(decisions), 1)


def seeded_generator(seed: int, device: str | torch.device) -> torch.Generator:
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def supernet_ranking(decisions: Sequence[tuple[str, Sequence[Any]]], score: Callable[[Architecture], float],
                     seed: int, n: int = RANKING_SAMPLES) -> list[tuple[Architecture, float]]:
    """The supernet's own ranking: ``n`` distinct architectures drawn uniformly (each decision
    independently, with a generator of its own so the search's random streams are untouched),
    each with ``score(arch)`` (its shared-weight validation accuracy)."""
    gen = torch.Generator().manual_seed((int(seed) * 7_919 + 104_729) % 2**63)
    sizes = 1
    for _, options in decisions:
        sizes *= max(len(options), 1)
    drawn: dict[tuple[str, ...], Architecture] = {}
    for _ in range(20 * n):
        if len(drawn) >= min(n, sizes):
            break
        arch = {name: options[int(torch.randint(len(options), (1,), generator=gen))] for name, options in decisions}
        drawn.setdefault(tuple(str(arch[name]) for name, _ in decisions), arch)
    return [(arch, float(score(arch))) for arch in drawn.values()]


def search_once(cell: CellContext, key: str, search: Callable[[ImageData], dict[str, Any]], name: str,
                **cost_details: Any) -> None:
    """The ``prepare`` of a one-shot algorithm: run ``search`` on the cell's search data (train +
    validation) unless its result is stored under ``key`` already, time it (synchronising CUDA),
    store ``{**result, "seconds"}`` in the cell state and record the search cost. A ``"ranking"``
    in the result (``[{"arch_id", "score"}]``: the supernet's own ranking) goes to
    ``cell.record_ranking`` instead (scored against the table on table datasets). The harness runs
    ``prepare`` in one worker per cell; the others find the stored result."""
    if cell.get_cell_state(key) is not None:
        return
    import time

    data = cell.data()
    if data is None:
        raise RuntimeError(f"{name} needs image data; incompatible() should have excluded this cell")
    start = time.perf_counter()
    result = search(data)
    if torch.device(cell.device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    ranking = result.pop("ranking", None)
    cell.set_cell_state(key, {**result, "seconds": seconds})
    cell.record_search_cost(seconds, **cost_details, **result)
    if ranking:
        cell.record_ranking(ranking)


def derived_arch(cell: CellContext, key: str, prepare: Callable[[CellContext], None]) -> Architecture:
    """The architecture a one-shot search derived (searching first if it has not run)."""
    state = cell.get_cell_state(key)
    if state is None:
        prepare(cell)
        state = cell.get_cell_state(key)
    return dict(state["arch"])
