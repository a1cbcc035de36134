"""The plugin author's kit, in the manner of ``optuna.testing``: contract tests per component kind,
and a real in-memory cell to run an algorithm with.

Subclass the contract for your component kind in your own test suite, name your component, and
pytest runs the harness's checks against it::

    from harness.testing import AlgorithmContract, ReporterContract

    class TestMyAlgorithm(AlgorithmContract):
        algorithm_name = "my-search"          # as registered by your plugin

    class TestMyReporter(ReporterContract):
        reporter_name = "my-latex"

    class TestMyLauncher(LauncherContract):
        launcher_name = "my-kubernetes"
        launch_args = ["--k8s-namespace", "ci"]

        def launch_storage(self):             # a database server the workers reach
            return os.environ.get("MY_POSTGRES_URL")

The contracts load your component through the real plugin machinery (entry points), so they also
check that your package is installed and discoverable. Factories receive ``self.options``: every
option's default from the loaded plugins' ``harness_addoption`` (as at run time), updated with the
``options`` a test class declares. Set ``plugins = ["my-plugin", ...]`` to load only some plugins
(the built-in ``samplers`` and ``pruners``, which the kit's cells use, are added); override
``make_*`` methods to build the component yourself.

For your own tests of an algorithm's behaviour, :func:`run_trials` runs N trials through the
runner's loop on a real Optuna study (in memory by default) and returns a :class:`KitCell`
(history, stored rows, search costs; ``run`` again to resume or to add a second worker)::

    cell = run_trials(MySearch(), TinySpace(), 30, tiny_score, seed=0)
    assert cell.best().arch == TINY_OPTIMUM

``score`` is a function ``arch -> accuracy``, a table ``{arch_id: accuracy}`` (e.g. read from a
NAS-Bench-201 extract), an ``Evaluator`` or a ``TabularBenchmark``.
"""

from __future__ import annotations

from harness.testing.algorithms import AlgorithmContract
from harness.testing.cells import DEFAULT_SHAPE, KitCell, ScoreEvaluator, make_cell, run_results, run_trials
from harness.testing.datasets import DatasetContract
from harness.testing.generators import GeneratorContract
from harness.testing.launchers import LauncherContract
from harness.testing.pruners import PrunerContract
from harness.testing.reporters import ReporterContract, sample_results
from harness.testing.samplers import SamplerContract
from harness.testing.spaces import SpaceContract
from harness.testing.toys import TINY_OPTIMUM, TinySpace, tiny_image_data, tiny_score

__all__ = [
    "DEFAULT_SHAPE",
    "TINY_OPTIMUM",
    "AlgorithmContract",
    "DatasetContract",
    "GeneratorContract",
    "KitCell",
    "LauncherContract",
    "PrunerContract",
    "ReporterContract",
    "SamplerContract",
    "ScoreEvaluator",
    "SpaceContract",
    "TinySpace",
    "make_cell",
    "run_results",
    "run_trials",
    "sample_results",
    "tiny_image_data",
    "tiny_score",
]
