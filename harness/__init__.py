"""harness: benchmark NAS and HPO strategies side by side on the same data, budget and seeds.

The core (this package) declares the plugin contract (:mod:`harness.hookspecs`) and runs grids of
Optuna studies; every strategy is a plugin (the built-ins live in ``plugins/``, imported as
``harness_plugins``). A plugin is a module of functions decorated with :data:`hookimpl`.
"""
from __future__ import annotations

import pluggy

__all__ = ["HOOKSPEC_VERSION", "PROJECT_NAME", "__version__", "hookimpl", "hookspec"]

__version__ = "0.1.0"

#: The pluggy project name; also the entry-point group third-party plugins register under.
PROJECT_NAME = "harness"

#: Version of the hook contract. The major number changes when a hook's signature or a component
#: interface changes incompatibly; a plugin may declare ``HARNESS_HOOKSPEC = "1"`` (a major number,
#: or ``"1.0"``) and is then refused with a one-line error by a harness of another major version.
HOOKSPEC_VERSION = "1.0"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
