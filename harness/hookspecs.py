"""The plugin contract: every hook a ``harness`` plugin may implement.

A plugin is a module (or object) with functions decorated by :data:`harness.hookimpl` whose names
match the hooks below. Implementations may accept fewer arguments than the spec declares (pluggy
passes only those named); never give an implementation's parameters default values.

Third-party plugins register through the ``harness`` entry-point group::

    [project.entry-points.harness]
    my-plugin = "my_package.my_module"

The built-in plugins (``plugins/``) are registered the same way. The contract's version is
:data:`harness.HOOKSPEC_VERSION`; a plugin module may set ``HARNESS_HOOKSPEC = "1"`` to be refused
cleanly by an incompatible harness.

Hooks are grouped by phase: start-up (options), registration (one hook per component kind), and
run lifecycle (metadata, trial and cell events). Registration hooks return lists of specs from
:mod:`harness.components`; the harness concatenates every plugin's list, and a name registered twice
within one kind is an error naming both plugins.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Mapping

from harness import hookspec

if TYPE_CHECKING:
    from harness.components import (
        AlgorithmSpec,
        DatasetSpec,
        GeneratorSpec,
        LauncherSpec,
        PrunerSpec,
        ReporterSpec,
        SamplerSpec,
        SpaceSpec,
    )

__all__ = [
    "harness_addoption",
    "harness_algorithms",
    "harness_cell_finished",
    "harness_datasets",
    "harness_generators",
    "harness_launchers",
    "harness_pruners",
    "harness_reporters",
    "harness_run_metadata",
    "harness_samplers",
    "harness_spaces",
    "harness_trial_finished",
]

# -------------------------------------------------------------------------------------------
# Start-up
# -------------------------------------------------------------------------------------------


@hookspec
def harness_addoption(parser: argparse.ArgumentParser) -> None:
    """Add command-line options to ``harness bench`` / ``harness worker``.

    Called once, after the selected plugins are loaded and before the command line is parsed in
    full (two-pass parsing: ``--plugins`` first). Options must have long names that do not clash
    with the harness's own; give every option a default. Parsed values reach component factories
    as ``options[dest]`` and are recorded in the run's metadata (``run.json``), so they must be
    JSON-serialisable (use ``str`` for paths). They are part of the run id (a changed value starts
    a new run) unless wrapped in :func:`harness.config.execution_only` (options that do not change
    what is computed, e.g. every option a reporter reads); ``harness report`` accepts them all.
    A factory that finds a bad value raises :class:`harness.errors.UsageError` (one line, exit 2);
    any other exception fails that cell only.
    """


# -------------------------------------------------------------------------------------------
# Registration: one hook per component kind. Each returns a list of specs; results of every
# plugin are concatenated. Keep these hooks cheap: no heavy imports, no I/O (factories do that).
# -------------------------------------------------------------------------------------------


@hookspec
def harness_generators() -> list[GeneratorSpec]:
    """Register search-space generators (the grid's ``generator`` axis).

    Return :class:`harness.components.GeneratorSpec` objects whose factory builds a
    :class:`harness.components.SpaceGenerator`: it turns a base space (the cell's ``space``) into
    the space the cell's algorithm searches. Generation runs once per (generator, base space,
    dataset, seed) in one worker; its JSON result is stored in the run's storage and every cell
    with that key loads it (:meth:`SpaceGenerator.load`). ``manual`` (the identity) is built in.
    """


@hookspec
def harness_spaces() -> list[SpaceSpec]:
    """Register search spaces.

    Return :class:`harness.components.SpaceSpec` objects whose factory builds a
    :class:`harness.components.SearchSpace`. A space must at least let an Optuna trial choose an
    architecture (``suggest``) and build it as a ``torch.nn.Module`` (``build``); optional
    capabilities (sample, mutate, enumerate, encode, graph, supernet, decisions) open it to more
    search algorithms.
    """


@hookspec
def harness_algorithms() -> list[AlgorithmSpec]:
    """Register search algorithms.

    Return :class:`harness.components.AlgorithmSpec` objects whose factory builds a
    :class:`harness.components.SearchAlgorithm`. The algorithm decides each trial's architecture
    (``propose``) through Optuna's ask/tell loop; the Optuna sampler decides the hyperparameters.
    One-shot algorithms search once per cell in ``prepare``.
    """


@hookspec
def harness_samplers() -> list[SamplerSpec]:
    """Register Optuna samplers.

    Return :class:`harness.components.SamplerSpec` objects; the factory receives a
    :class:`harness.components.SamplerRequest` (the cell's seed) and returns any
    ``optuna.samplers.BaseSampler``, which is passed to Optuna unwrapped. Set
    ``multi_objective=True`` for samplers meant to optimise (accuracy, MAdds) jointly.
    """


@hookspec
def harness_pruners() -> list[PrunerSpec]:
    """Register Optuna pruners.

    Return :class:`harness.components.PrunerSpec` objects; the factory receives a
    :class:`harness.components.PrunerRequest` (the per-trial epoch budget) and returns any
    ``optuna.pruners.BasePruner``. Trials report validation accuracy once per epoch (step = epoch,
    starting at 1), so the pruner's resource unit is the epoch.
    """


@hookspec
def harness_datasets() -> list[DatasetSpec]:
    """Register datasets and tabular benchmarks.

    Return :class:`harness.components.DatasetSpec` objects whose factory builds an
    :class:`harness.components.ImageDataset` (read from its official on-disk format under
    ``--data-dir``) or a :class:`harness.components.TabularBenchmark` (accuracy by lookup).
    """


@hookspec
def harness_reporters() -> list[ReporterSpec]:
    """Register reporters.

    Return :class:`harness.components.ReporterSpec` objects whose factory builds a
    :class:`harness.components.Reporter`. Reporters run at the end of ``harness bench`` and on
    ``harness report <run>``, reading only the stored results. Each runs in isolation: an exception
    costs only its own output (one stderr line naming it and its plugin, the traceback in the
    run's ``harness.log``, exit code 4); a :class:`harness.errors.UsageError` is a bad option value
    (one line, exit 2).
    """


@hookspec
def harness_launchers() -> list[LauncherSpec]:
    """Register launchers (``--launcher``, default ``local``): where a run's workers run.

    Return :class:`harness.components.LauncherSpec` objects whose factory builds a
    :class:`harness.components.Launcher`. ``harness bench`` asks the chosen one to check the
    launch before anything is written, then to start the workers once the run's folder and storage
    exist, and watches them until they end (or, with ``--detach``, leaves them). Each worker joins
    the run through its storage, as ``harness worker`` does, so a restarted worker joins again.
    Built in: ``local`` (``--jobs`` processes on this machine) and ``slurm`` (a submitit job array).
    """


# -------------------------------------------------------------------------------------------
# Run lifecycle
# -------------------------------------------------------------------------------------------


@hookspec
def harness_run_metadata(config: Mapping[str, Any]) -> dict[str, Any]:
    """Contribute entries to the run's metadata (``results/<run-id>/run.json``).

    Called once when a run starts, with the run's configuration (axes, budgets, options). Return a
    JSON-serialisable dict; the dicts of all plugins are stored under ``"plugins_metadata"``, keyed
    by plugin name.
    """


@hookspec
def harness_trial_finished(record: Mapping[str, Any]) -> None:
    """Called in the worker process after each trial is told to Optuna.

    ``record`` is the trial's row as it will appear in ``trials.csv`` (run id, cell key, number,
    state, accuracies, MAdds, parameters, epochs, wall times, device, params, error). An exception
    raised here is logged and ignored: it never fails the trial.
    """


@hookspec
def harness_cell_finished(cell: Mapping[str, Any]) -> None:
    """Called in the worker process when a cell reaches its budget, exhausts its space (state
    ``exhausted``), fails or is ``n/a``.

    ``cell`` is the cell's row as it will appear in ``cells.csv``. Exceptions are logged and ignored.
    With several workers (``--jobs``, ``harness worker``, a launcher's tasks) every worker that
    reaches the cell calls it, in its own process, the one that searched it and the others that
    find it finished: an observer that counts cells keys them by ``cell["cell"]``.
    """
