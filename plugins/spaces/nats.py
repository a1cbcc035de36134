"""NATS-Bench's two search spaces: ``nats-sss`` (sizes) and ``nats-tss`` (topologies).

``nats-sss`` is NATS-Bench's size space: the output channels of the network's 5 layers
(:mod:`harness_plugins.spaces._nats_sss_ops`), each one of 8, 16, ..., 64, so 8^5 = 32,768
architectures. An architecture is ``{"layer1": 8, ..., "layer5": 64}``; its identity is the
benchmark's own string ``"8:16:24:32:64"``, the key of the ``nats-sss-*`` tables, and
:meth:`SizeSpace.enumerate` lists them in the benchmark's index order (layer 1 the most
significant digit). It is an HPO-like space: ``suggest`` asks Optuna for five integers
(``suggest_int(name, 8, 64, step=8)``), so samplers see the channel counts as ordered. For
random search, REA and NPENAS it has encodings of its own: ``encode`` is one-hot per layer (40
values); ``graph`` is the network as NPENAS reads graphs, a chain input -> layer 1 -> ... ->
layer 5 -> output whose nodes are labelled by their channel count. ``mutate`` gives one layer
another channel count (NATS-Bench's REA may redraw the same count; here every mutation changes
the architecture, as the nb201 space's does).

``nats-tss`` is the topology space, the NAS-Bench-201 cell (:mod:`harness_plugins.spaces.nb201`,
same architectures and identities), offered under NATS-Bench's name so that it can be
restricted.

**Restricting a space to an archive.** ``--nats-tss-archs`` / ``--nats-sss-archs`` take ``all``
(default), ``archive`` (the architectures whose file the archive folder holds: a partial archive,
or the sample the NATS-Bench repository ships with three) or a list of benchmark indices such as
``0,11,284`` or ``0-99,284``. A restricted space offers only those
(:mod:`harness_plugins.spaces._restricted`), so no search leaves what the archive can answer. The
archive is the one the ``nats-*`` tables read (``--nats-tss-dir`` / ``--nats-sss-dir``, or its
release name under ``--data-dir``).
"""
from __future__ import annotations

import argparse
import itertools
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np
from harness_plugins.spaces._restricted import RestrictedSpace
from harness_plugins.spaces.nb201 import NB201Space, parse_arch_string

from harness import hookimpl
from harness.components import Architecture, InputShape, Options, SearchSpace, SpaceSpec
from harness.errors import UsageError

if TYPE_CHECKING:
    import optuna
    from torch import nn

__all__ = [
    "CHANNELS",
    "GRAPH_LABELS",
    "LAYERS",
    "SizeSpace",
    "parse_indices",
    "parse_size_string",
    "restrict",
    "size_string",
]

CHANNELS: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
LAYERS: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4", "layer5")
#: node labels of :meth:`SizeSpace.graph` (one-hot feature columns, in this order)
GRAPH_LABELS: tuple[str, ...] = ("input", *(str(c) for c in CHANNELS), "output")
_ARCHS_OPTION = {"tss": "--nats-tss-archs", "sss": "--nats-sss-archs"}


def size_string(arch: Architecture) -> str:
    """The benchmark's string of a size architecture: ``"8:16:24:32:64"``."""
    return ":".join(str(arch[layer]) for layer in LAYERS)


def parse_size_string(text: str) -> Architecture:
    """The architecture of ``"8:16:24:32:64"``; ``ValueError`` naming the problem."""
    parts = text.strip().split(":")
    if len(parts) != len(LAYERS) or not all(p.isdigit() and int(p) in CHANNELS for p in parts):
        raise ValueError(f"{text!r} is not {len(LAYERS)} ':'-separated channel counts from {CHANNELS}")
    return {layer: int(p) for layer, p in zip(LAYERS, parts)}


class SizeSpace(SearchSpace):
    """NATS-Bench's size space (see the module docstring)."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "mutate", "enumerate", "encode", "graph",
                                                        "decisions"})

    def _check(self, arch: Architecture) -> None:
        if set(arch) != set(LAYERS) or any(arch[layer] not in CHANNELS for layer in LAYERS):
            raise ValueError(f"not a NATS-Bench size architecture: {arch!r}")

    def suggest(self, trial: optuna.Trial) -> Architecture:
        return {layer: trial.suggest_int(layer, CHANNELS[0], CHANNELS[-1], step=CHANNELS[1] - CHANNELS[0])
                for layer in LAYERS}

    def build(self, arch: Architecture, shape: InputShape) -> nn.Module:
        from harness_plugins.spaces._nats_sss_ops import SizeNetwork

        self._check(arch)
        return SizeNetwork([arch[layer] for layer in LAYERS], shape.channels, shape.num_classes)

    def arch_id(self, arch: Architecture) -> str:
        self._check(arch)
        return size_string(arch)

    def sample(self, rng: np.random.Generator) -> Architecture:
        picks = rng.integers(len(CHANNELS), size=len(LAYERS))
        return {layer: CHANNELS[int(k)] for layer, k in zip(LAYERS, picks)}

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        self._check(arch)
        layer = LAYERS[int(rng.integers(len(LAYERS)))]
        others = [c for c in CHANNELS if c != arch[layer]]
        return {**arch, layer: others[int(rng.integers(len(others)))]}

    def enumerate(self) -> Sequence[Architecture]:
        return [dict(zip(LAYERS, combo)) for combo in itertools.product(CHANNELS, repeat=len(LAYERS))]

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot channel count per layer, layers in order (40 values)."""
        self._check(arch)
        out = np.zeros((len(LAYERS), len(CHANNELS)), dtype=np.float32)
        out[np.arange(len(LAYERS)), [CHANNELS.index(arch[layer]) for layer in LAYERS]] = 1.0
        return out.reshape(-1)

    def graph(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        """A 7x7 ``int8`` chain adjacency (row -> column) and 7x10 one-hot node features."""
        self._check(arch)
        labels = ["input", *(str(arch[layer]) for layer in LAYERS), "output"]
        adjacency = np.eye(len(labels), k=1, dtype=np.int8)
        features = np.zeros((len(labels), len(GRAPH_LABELS)), dtype=np.float32)
        features[np.arange(len(labels)), [GRAPH_LABELS.index(label) for label in labels]] = 1.0
        return adjacency, features

    def decisions(self) -> Sequence[tuple[str, Sequence[Any]]]:
        return [(layer, CHANNELS) for layer in LAYERS]


def parse_indices(text: str, size: int) -> list[int]:
    """``"0,11,284"`` or ``"0-99,284"`` as sorted distinct indices below ``size``; ``ValueError``."""
    found: set[int] = set()
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f"{part.strip()!r} is not an index or a range like 0-99")
        first, last = int(low), int(high) if sep else int(low)
        if first > last or last >= size:
            raise ValueError(f"{part.strip()!r} is not within 0-{size - 1}")
        found.update(range(first, last + 1))
    return sorted(found)


def restrict(base: SearchSpace, space: str, options: Mapping[str, Any]) -> SearchSpace:
    """``base`` restricted as ``--nats-{space}-archs`` says (see the module docstring)."""
    spec = str(options.get(f"nats_{space}_archs", "all")).strip()
    if spec == "all":
        return base
    from harness_plugins.datasets._nats_archive import archive_dir, open_archive

    archive = open_archive(archive_dir(options, space), space)
    if spec == "archive":
        indices = archive.present()
        if not indices:
            raise UsageError(f"{_ARCHS_OPTION[space]} archive: {archive.path} holds no architecture file")
    else:
        try:
            indices = parse_indices(spec, len(archive))
        except ValueError as exc:
            raise UsageError(f"{_ARCHS_OPTION[space]} {spec!r}: {exc} (or give all, archive)") from None
    parse = parse_arch_string if space == "tss" else parse_size_string
    return RestrictedSpace(base, [parse(archive.arch_string(i)) for i in indices])


def _size(options: Options) -> SearchSpace:
    return restrict(SizeSpace(), "sss", options)


def _topology(options: Options) -> SearchSpace:
    return restrict(NB201Space(), "tss", options)


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("NATS-Bench spaces (nats-tss, nats-sss)")
    for space, name in (("tss", "nats-tss"), ("sss", "nats-sss")):
        group.add_argument(_ARCHS_OPTION[space], default="all", metavar="WHICH",
                           help=f"restrict {name} to: all (default), archive (the architectures the NATS-Bench "
                                f"{space} archive holds) or benchmark indices such as 0,11,284 or 0-99")


@hookimpl
def harness_spaces() -> list[SpaceSpec]:
    return [
        SpaceSpec(name="nats-sss", factory=_size,
                  description="NATS-Bench size space: 5 layers x 8 channel counts (32,768 networks)"),
        SpaceSpec(name="nats-tss", factory=_topology,
                  description="NATS-Bench topology space (= nb201), restrictable with --nats-tss-archs"),
    ]
