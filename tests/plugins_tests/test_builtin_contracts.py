"""The shipped contract kits (harness.testing) run against every built-in sampler, pruner, space
and dataset: what a third-party author gets, applied to our own components first."""
from __future__ import annotations

from harness.components import InputShape
from harness.testing import (
    DatasetContract,
    PrunerContract,
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
