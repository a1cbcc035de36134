"""The shipped contract kits (harness.testing) run against every built-in sampler, pruner, space
and dataset: what a third-party author gets, applied to our own components first."""
from __future__ import annotations

import pytest

from harness.components import InputShape
from harness.testing import (
    AlgorithmContract,
    DatasetContract,
    GeneratorContract,
    PrunerContract,
    ReporterContract,
    SamplerContract,
    SpaceContract,
)


class TestTPE(SamplerContract):
    sampler_name = "tpe"


class TestRandom(SamplerContract):
    sampler_name = "random"


class TestNSGA2(SamplerContract):
    sampler_name = "nsga2"


class TestNSGA3(SamplerContract):
    sampler_name = "nsga3"


class TestQMC(SamplerContract):
    sampler_name = "qmc"


@pytest.mark.slow  # Gaussian-process fits: seconds per trial
class TestGP(SamplerContract):
    sampler_name = "gp"
    n_trials = 12


class TestCmaEs(SamplerContract):
    sampler_name = "cmaes"


class TestNoPruner(PrunerContract):
    pruner_name = "none"
    prunes = False


class TestMedian(PrunerContract):
    pruner_name = "median"


class TestSuccessiveHalving(PrunerContract):
    pruner_name = "sha"


class TestHyperband(PrunerContract):
    pruner_name = "hyperband"


class TestConvFC(SpaceContract):
    space_name = "convfc"
    shape = InputShape(1, 8, 8, 10)


class TestDigits(DatasetContract):
    dataset_name = "digits"


class TestSamplerAlgorithm(AlgorithmContract):
    algorithm_name = "sampler"


class TestRandomSearch(AlgorithmContract):
    algorithm_name = "random"


class TestREA(AlgorithmContract):
    algorithm_name = "rea"
    options = {"rea_population": 4, "rea_tournament": 2}


class TestNPENAS(AlgorithmContract):
    algorithm_name = "npenas-np"
    space_name = "nb201"
    n_trials = 6
    options = {"npenas_np_epochs": 2, "npenas_init": 3, "npenas_batch": 2, "npenas_candidates": 10,
               "nb201_channels": 4, "nb201_cells": 1}


class TestRLChild(AlgorithmContract):
    algorithm_name = "rl"


class TestSummary(ReporterContract):
    reporter_name = "summary"


class TestImportance(ReporterContract):
    reporter_name = "importance"


class TestCompare(ReporterContract):
    reporter_name = "compare"


class TestPlots(ReporterContract):
    reporter_name = "plots"


class TestManualGenerator(GeneratorContract):
    generator_name = "manual"

    def test_returns_the_base_itself(self) -> None:
        generator, state, request = self._generated()
        assert generator.load(request.base, state.space) is request.base
