"""Contract tests for plugin authors, in the manner of ``optuna.testing``.

Subclass the contract for your component kind in your own test suite, name your component, and
pytest runs the harness's checks against it::

    from harness.testing import SamplerContract

    class TestMySampler(SamplerContract):
        sampler_name = "my-sampler"          # as registered by your plugin

The contracts load your component through the real plugin machinery (entry points), so they also
check that your package is installed and discoverable. Set ``plugins = ["my-plugin", ...]`` to
load only some plugins; override ``make_*`` methods to build the component yourself.
"""
from __future__ import annotations

from harness.testing.datasets import DatasetContract
from harness.testing.pruners import PrunerContract
from harness.testing.samplers import SamplerContract
from harness.testing.spaces import SpaceContract

__all__ = ["DatasetContract", "PrunerContract", "SamplerContract", "SpaceContract"]
