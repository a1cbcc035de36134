"""Optuna's samplers that need no extra service, passed to Optuna unwrapped.

Constants: TPE (Bergstra et al., NeurIPS 2011) ``n_startup_trials=10``, Optuna's default; NSGA-II
(Deb et al., IEEE TEVC 2002) ``population_size=50`` (``--nsga-population``) and multi-objective
(validation accuracy up, MAdds down). Each declares its random start-up, so a cell whose budget
lies within it is noted as random search in ``cells.csv`` and the summary. Each sampler is seeded
with the cell's seed, so a cell is reproducible sampler-wise.
"""
from __future__ import annotations

import argparse

import optuna

from harness import hookimpl
from harness.components import Options, SamplerRequest, SamplerSpec
from harness.errors import UsageError

TPE_STARTUP_TRIALS = 10
NSGA_POPULATION = 50


def _population(options: Options) -> int:
    """NSGA-II/III's population; Optuna needs at least 2 (a bad value is a one-line error)."""
    value = options.get("nsga_population")
    population = NSGA_POPULATION if value is None else value
    if not isinstance(population, int) or isinstance(population, bool) or population < 2:
        raise UsageError(f"--nsga-population {value!r}: must be a whole number of at least 2")
    return population


def _startup(options: Options) -> int:
    return TPE_STARTUP_TRIALS


def _tpe(req: SamplerRequest) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=req.seed, n_startup_trials=TPE_STARTUP_TRIALS)


def _random(req: SamplerRequest) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=req.seed)


def _nsga2(req: SamplerRequest) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=req.seed, population_size=_population(req.options))


def _nsga3(req: SamplerRequest) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIIISampler(seed=req.seed, population_size=_population(req.options))


def _cmaes(req: SamplerRequest) -> optuna.samplers.BaseSampler:
    # CMA-ES handles only numeric parameters; categorical ones (optimizer, pooling) fall back to
    # uniform sampling, which Optuna announces with a warning per parameter.
    return optuna.samplers.CmaEsSampler(seed=req.seed, n_startup_trials=TPE_STARTUP_TRIALS)


def _qmc(req: SamplerRequest) -> optuna.samplers.BaseSampler:
    return optuna.samplers.QMCSampler(seed=req.seed, qmc_type="sobol", scramble=True)


def _gp(req: SamplerRequest) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=req.seed, n_startup_trials=TPE_STARTUP_TRIALS)


@hookimpl
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    parser.add_argument_group("samplers").add_argument(
        "--nsga-population", type=int, default=NSGA_POPULATION,
        help=f"NSGA-II/III population (default {NSGA_POPULATION}; a budget within one generation is random search)")


@hookimpl
def harness_samplers() -> list[SamplerSpec]:
    return [
        SamplerSpec(name="tpe", description="Tree-structured Parzen Estimator (n_startup_trials=10)", factory=_tpe,
                    startup_trials=_startup),
        SamplerSpec(name="random", description="uniform random sampling", factory=_random),
        SamplerSpec(name="nsga2", description="NSGA-II, multi-objective accuracy vs MAdds (population 50)",
                    factory=_nsga2, multi_objective=True, startup_trials=_population),
        SamplerSpec(name="nsga3", description="NSGA-III, multi-objective accuracy vs MAdds (population 50)",
                    factory=_nsga3, multi_objective=True, startup_trials=_population),
        SamplerSpec(name="cmaes", description="CMA-ES on numeric parameters, random on categorical", factory=_cmaes,
                    startup_trials=_startup),
        SamplerSpec(name="qmc", description="scrambled Sobol quasi-Monte Carlo", factory=_qmc),
        SamplerSpec(name="gp", description="Gaussian-process Bayesian optimisation", factory=_gp,
                    startup_trials=_startup),
    ]
