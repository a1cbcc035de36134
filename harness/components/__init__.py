"""The component interfaces plugins implement, and the specs hooks return to register them.

A plugin never hands the harness a ready object: each registration hook returns *specs* (name,
description, factory). The harness calls a factory only for the components a run actually uses,
so ``harness list`` stays cheap (no torch import) and every run gets fresh objects.

Kinds and their interfaces:

========== ======================= ==================================================
kind       spec                    the factory returns
========== ======================= ==================================================
generator  :class:`GeneratorSpec`  a :class:`SpaceGenerator`
space      :class:`SpaceSpec`      a :class:`SearchSpace`
algorithm  :class:`AlgorithmSpec`  a :class:`SearchAlgorithm`
sampler    :class:`SamplerSpec`    an ``optuna.samplers.BaseSampler`` (unwrapped)
pruner     :class:`PrunerSpec`     an ``optuna.pruners.BasePruner`` (unwrapped)
dataset    :class:`DatasetSpec`    an :class:`ImageDataset` or a :class:`TabularBenchmark`
reporter   :class:`ReporterSpec`   a :class:`Reporter`
launcher   :class:`LauncherSpec`   a :class:`Launcher` (where a run's workers run)
========== ======================= ==================================================

Architectures are plain JSON-serialisable dicts (``Architecture``); a space gives each one a
canonical string identity (:meth:`SearchSpace.arch_id`) used to deduplicate and to look up tables.

The interfaces live in one module per concern, imported in this order and never in a cycle:
``base`` (shared types), ``data``, ``spaces``, ``context``, ``evaluation``, ``algorithms``,
``generation``, ``reports``, ``launchers``, and ``specs`` (what hooks return) on top; import them
from here.
"""
from __future__ import annotations

from harness.components.algorithms import SearchAlgorithm, SpaceExhausted
from harness.components.context import CellContext, EvaluatedArchitecture
from harness.components.data import DatasetRequest, ImageData, ImageDataset, InputShape
from harness.components.evaluation import (
    Evaluator,
    TabularBenchmark,
    TrialOutcome,
    TrialStopped,
)
from harness.components.generation import GeneratedSpaceState, GenerationRequest, SpaceGenerator
from harness.components.launchers import LaunchedWorkers, Launcher, LaunchRequest
from harness.components.reports import Reporter, RunResults
from harness.components.spaces import SearchSpace
from harness.components.specs import (
    KINDS,
    AlgorithmSpec,
    Architecture,
    ComponentSpec,
    DatasetSpec,
    GeneratorSpec,
    LauncherSpec,
    Options,
    PrunerRequest,
    PrunerSpec,
    ReporterSpec,
    SamplerRequest,
    SamplerSpec,
    SpaceSpec,
)

__all__ = [
    "AlgorithmSpec",
    "Architecture",
    "CellContext",
    "ComponentSpec",
    "DatasetRequest",
    "DatasetSpec",
    "EvaluatedArchitecture",
    "GeneratedSpaceState",
    "GenerationRequest",
    "GeneratorSpec",
    "Evaluator",
    "ImageData",
    "ImageDataset",
    "InputShape",
    "KINDS",
    "LaunchRequest",
    "LaunchedWorkers",
    "Launcher",
    "LauncherSpec",
    "Options",
    "PrunerRequest",
    "PrunerSpec",
    "Reporter",
    "ReporterSpec",
    "RunResults",
    "SamplerRequest",
    "SamplerSpec",
    "SearchAlgorithm",
    "SearchSpace",
    "SpaceExhausted",
    "SpaceGenerator",
    "SpaceSpec",
    "TabularBenchmark",
    "TrialOutcome",
    "TrialStopped",
]
