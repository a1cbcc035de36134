"""Loading plugins and the typed facade over their hooks.

Only this module calls ``pm.hook`` (always through pluggy's public API:
``load_setuptools_entrypoints``, ``pm.hook``, ``subset_hook_caller``, so ``tryfirst``, ``trylast``
and hook wrappers work as in any pluggy host); everything else works with :class:`Registry`: typed
constructors per component kind (:meth:`Registry.dataset`, :meth:`Registry.sampler`...), option
registration (:meth:`Registry.add_options`) and observers (:meth:`Registry.trial_finished`). A
fresh plugin manager is made per run (and per test), never a module global.

Which plugins load: every entry point of the ``harness`` group, or with ``--plugins`` only those
named plus the ones whose module sets ``HARNESS_ALWAYS_LOAD = True`` (an axis's identity, such as
the ``manual`` generator, which every grid needs whatever else is selected).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import pluggy

from harness import HOOKSPEC_VERSION, PROJECT_NAME, hookspecs
from harness.components import (
    KINDS,
    ComponentSpec,
    ImageDataset,
    Launcher,
    Options,
    PrunerRequest,
    Reporter,
    SamplerRequest,
    SamplerSpec,
    SearchAlgorithm,
    SearchSpace,
    SpaceGenerator,
    TabularBenchmark,
)
from harness.config import is_execution_only
from harness.errors import PluginError, UsageError

if TYPE_CHECKING:
    import optuna

__all__ = ["Registered", "Registry", "create_plugin_manager", "load_registry"]

log = logging.getLogger(__name__)

_KIND_HOOKS = {
    "dataset": "harness_datasets",
    "generator": "harness_generators",
    "space": "harness_spaces",
    "algorithm": "harness_algorithms",
    "sampler": "harness_samplers",
    "pruner": "harness_pruners",
    "reporter": "harness_reporters",
    "launcher": "harness_launchers",
}


def _available_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=PROJECT_NAME):
        found.setdefault(ep.name, ep)  # first on sys.path wins, as for imports and pluggy's loader
    return found


def _check_hookspec_version(name: str, module: Any) -> None:
    wanted = getattr(module, "HARNESS_HOOKSPEC", None)
    if wanted is None:
        return
    if str(wanted).split(".")[0] != HOOKSPEC_VERSION.split(".")[0]:
        raise PluginError(
            f"plugin {name!r} needs hook contract {wanted}, this harness provides {HOOKSPEC_VERSION}"
        )


def _always_loaded(ep: importlib.metadata.EntryPoint) -> bool:
    """Whether the entry point's module declares ``HARNESS_ALWAYS_LOAD = True`` (imported to find
    out only when ``--plugins`` would otherwise leave it out). A module that fails to import is not:
    the user did not select it, so its error must not stop the run."""
    try:
        return bool(getattr(importlib.import_module(ep.value.split(":")[0]), "HARNESS_ALWAYS_LOAD", False))
    except Exception:
        return False


def create_plugin_manager(
    select: Sequence[str] | None = None,
    extra_plugins: Iterable[tuple[str, object]] = (),
) -> pluggy.PluginManager:
    """A fresh plugin manager with the ``harness`` entry-point plugins loaded.

    ``select`` restricts loading to those plugin names (``--plugins``) and the always-loaded ones
    (module attribute ``HARNESS_ALWAYS_LOAD = True``); an unknown name is a :class:`UsageError`
    listing the known ones. ``extra_plugins`` are (name, plugin) pairs
    registered directly (tests, embedding). Unknown hooks fail loudly (``check_pending``).
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    available = _available_entry_points()
    extra = list(extra_plugins)
    known = sorted(set(available) | {name for name, _ in extra})
    if select is not None:
        unknown = [name for name in select if name not in known]
        if unknown:
            raise UsageError(
                f"unknown plugin {', '.join(map(repr, unknown))}; known plugins: {', '.join(known)}"
            )
    wanted = set(select) if select is not None else None
    for name, ep in sorted(available.items()):
        if wanted is not None and name not in wanted and not _always_loaded(ep):
            continue
        try:  # pluggy's own loader, one entry point at a time, so a broken plugin names itself
            pm.load_setuptools_entrypoints(PROJECT_NAME, name=name)
        except Exception as exc:
            raise PluginError(f"plugin {name!r} ({ep.value}) failed to import: {exc!r}") from exc
        module = pm.get_plugin(name)
        try:
            _check_hookspec_version(name, module)
        except PluginError:
            pm.unregister(module)
            raise
    for name, plugin in extra:
        if wanted is not None and name not in wanted:
            continue
        _check_hookspec_version(name, plugin)
        pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r} implements an unknown hook: {exc}") from exc
    return pm


@dataclass(frozen=True)
class Registered:
    """A component with the plugin that registered it."""

    spec: ComponentSpec
    plugin: str
    version: str

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def name(self) -> str:
        return self.spec.name


class Registry:
    """Every component the loaded plugins register, by kind and name."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        #: option dest -> the plugin whose ``harness_addoption`` added it (see :meth:`add_options`)
        self._option_owners: dict[str, str] = {}
        #: option dests a plugin marked :func:`harness.config.execution_only`
        self._execution_only: set[str] = set()
        #: (plugin, hook) of observers that failed: the console has said so once
        self._failed_observers: set[tuple[str, str]] = set()
        versions = {}
        for plugin, dist in pm.list_plugin_distinfo():
            versions[pm.get_name(plugin)] = dist.version
        self._by_kind: dict[str, dict[str, Registered]] = {kind: {} for kind in KINDS}
        for kind, hook_name in _KIND_HOOKS.items():
            owners = self._owners(kind, hook_name)
            hook = getattr(pm.hook, hook_name)
            try:  # the hook as pluggy calls it: tryfirst/trylast order, wrappers may filter or add
                specs = [spec for result in hook() for spec in (result or [])]
            except Exception as exc:
                raise PluginError(f"a plugin failed in {hook_name}: {exc!r}") from exc
            for spec in specs:
                if not isinstance(spec, ComponentSpec) or spec.kind != kind:
                    raise PluginError(f"{hook_name} returned {spec!r}, expected {kind} specs")
                plugin_name = owners.get(spec.name, "unknown")
                version = versions.get(plugin_name) or getattr(pm.get_plugin(plugin_name), "__version__", "unknown")
                self._by_kind[kind].setdefault(spec.name, Registered(spec, plugin_name, str(version)))

    def _owners(self, kind: str, hook_name: str) -> dict[str, str]:
        """Which plugin registers which name of ``kind``: each implementation called alone (through
        pluggy's subset caller), so that an error and a name clash both name the plugin."""
        owners: dict[str, str] = {}
        plugins = self.pm.get_plugins()
        called: list[object] = []  # a plugin may implement the hook twice (``specname``): called once
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.hookwrapper or impl.wrapper or any(impl.plugin is p for p in called):
                continue
            called.append(impl.plugin)
            alone = self.pm.subset_hook_caller(hook_name, remove_plugins=[p for p in plugins if p is not impl.plugin])
            try:
                specs = [spec for result in alone() for spec in (result or [])]
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc!r}") from exc
            for spec in specs:
                if not isinstance(spec, ComponentSpec) or spec.kind != kind:
                    raise PluginError(f"plugin {impl.plugin_name!r}: {hook_name} returned {spec!r}, "
                                      f"expected {kind} specs")
                if spec.name in owners:
                    clash = (f"twice by plugin {impl.plugin_name!r}" if owners[spec.name] == impl.plugin_name else
                             f"by both plugin {owners[spec.name]!r} and plugin {impl.plugin_name!r}")
                    raise PluginError(f"{kind} {spec.name!r} is registered {clash}")
                owners[spec.name] = impl.plugin_name
        return owners

    def with_components(self, specs: Iterable[ComponentSpec], plugin: str) -> "Registry":
        """A registry with ``specs`` added (replacing components of the same kind and name), as if
        plugin ``plugin`` registered them; the plugins, options and observers are this one's. The
        test kit builds cells from instances this way, through the same constructors as a run."""
        extended = object.__new__(Registry)
        extended.__dict__.update(self.__dict__)
        extended._by_kind = {kind: dict(table) for kind, table in self._by_kind.items()}
        for spec in specs:
            extended._by_kind[spec.kind][spec.name] = Registered(spec, plugin, "0")
        return extended

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def all(self) -> list[Registered]:
        return [reg for kind in KINDS for _, reg in sorted(self._by_kind[kind].items())]

    def get(self, kind: str, name: str) -> Registered:
        """The component, or a :class:`UsageError` naming it and listing the known ones."""
        table = self._by_kind[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "(none loaded)"
            raise UsageError(f"unknown {kind} {name!r}; known {kind}s: {known}")
        return table[name]

    def who(self, kind: str, name: str) -> str:
        """``kind name (plugin 'p')``: a component and the plugin whose code it is, for the line
        that says it failed."""
        return f"{kind} {name} (plugin {self.get(kind, name).plugin!r})"

    # -- typed constructors: the one way the core builds a component ---------------------------

    def _build(self, kind: str, name: str, argument: Any, expected: type | tuple[type, ...]) -> Any:
        """Call the factory of ``kind`` ``name``; a result of the wrong type is a plugin error naming
        the plugin (exceptions of the factory itself propagate: see :func:`harness.assembly.guarded`).
        Reporters are duck-typed: anything with a ``report`` method."""
        registered = self.get(kind, name)
        component = registered.spec.factory(argument)
        if kind == "reporter" and callable(getattr(component, "report", None)):
            return component
        if not isinstance(component, expected):
            names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
            raise PluginError(f"plugin {registered.plugin!r}: the factory of {kind} {name!r} returned "
                              f"{type(component).__name__}, expected {names}")
        return component

    def dataset(self, name: str, options: Options) -> ImageDataset | TabularBenchmark:
        return self._build("dataset", name, options, (ImageDataset, TabularBenchmark))

    def generator(self, name: str, options: Options) -> SpaceGenerator:
        return self._build("generator", name, options, SpaceGenerator)

    def space(self, name: str, options: Options) -> SearchSpace:
        return self._build("space", name, options, SearchSpace)

    def algorithm(self, name: str, options: Options) -> SearchAlgorithm:
        return self._build("algorithm", name, options, SearchAlgorithm)

    def sampler(self, name: str, request: SamplerRequest) -> optuna.samplers.BaseSampler:
        import optuna

        return self._build("sampler", name, request, optuna.samplers.BaseSampler)

    def pruner(self, name: str, request: PrunerRequest) -> optuna.pruners.BasePruner:
        import optuna

        return self._build("pruner", name, request, optuna.pruners.BasePruner)

    def reporter(self, name: str, options: Options) -> Reporter:
        return self._build("reporter", name, options, Reporter)

    def launcher(self, name: str, options: Options) -> Launcher:
        return self._build("launcher", name, options, Launcher)

    def multi_objective(self, sampler: str) -> bool:
        """Whether sampler ``sampler`` optimises (accuracy, MAdds) rather than accuracy alone."""
        spec = self.get("sampler", sampler).spec
        return isinstance(spec, SamplerSpec) and spec.multi_objective

    def startup_trials(self, sampler: str, options: Options) -> int:
        """How many first trials sampler ``sampler`` draws at random (0 when it does not say)."""
        spec = self.get("sampler", sampler).spec
        return spec.startup_trials(options) if isinstance(spec, SamplerSpec) and spec.startup_trials else 0

    # -- options ---------------------------------------------------------------------------------

    def add_options(self, parser: argparse.ArgumentParser, record: bool = True) -> None:
        """Let every plugin add its options (``harness_addoption``, one plugin at a time through
        pluggy's subset caller, so a clash names its plugin); with ``record``, remember which plugin
        owns each option and which it marked :func:`harness.config.execution_only`."""
        plugins = self.pm.get_plugins()
        for impl in self.pm.hook.harness_addoption.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            before = len(parser._actions)
            alone = self.pm.subset_hook_caller("harness_addoption",
                                               remove_plugins=[p for p in plugins if p is not impl.plugin])
            try:
                alone(parser=parser)
            except argparse.ArgumentError as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} adds a clashing option: {exc}") from None
            if not record:
                continue
            for action in parser._actions[before:]:  # which plugin owns which option
                self._option_owners[action.dest] = impl.plugin_name
                if is_execution_only(action):
                    self._execution_only.add(action.dest)

    def plugin_options(self) -> list[str]:
        """Every option dest a plugin added (after :meth:`add_options`)."""
        return sorted(self._option_owners)

    def result_options(self, plugins: Iterable[str]) -> list[str]:
        """The options of ``plugins`` that change what a run computes (not execution-only): the ones
        a run id hashes."""
        wanted = set(plugins)
        return sorted(dest for dest, owner in self._option_owners.items()
                      if owner in wanted and dest not in self._execution_only)

    def plugin_versions(self) -> dict[str, str]:
        versions: dict[str, str] = {}
        for plugin, dist in self.pm.list_plugin_distinfo():
            versions[str(self.pm.get_name(plugin))] = dist.version
        for name, plugin in self.pm.list_name_plugin():
            versions.setdefault(name, str(getattr(plugin, "__version__", "unknown")))
        return dict(sorted(versions.items()))

    # Lifecycle hooks: observers must never break a run.
    def run_metadata(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Each plugin's ``harness_run_metadata``, keyed by plugin (one subset call per plugin)."""
        out: dict[str, Any] = {}
        plugins = self.pm.get_plugins()
        for impl in self.pm.hook.harness_run_metadata.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            alone = self.pm.subset_hook_caller("harness_run_metadata",
                                               remove_plugins=[p for p in plugins if p is not impl.plugin])
            try:
                results = alone(config=config)
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed in harness_run_metadata: {exc!r}") from exc
            if results:
                out[impl.plugin_name] = results[0]
        return out

    def observes_trials(self) -> bool:
        """Whether any plugin implements ``harness_trial_finished`` (building its record is then
        worth the work)."""
        return bool(self.pm.hook.harness_trial_finished.get_hookimpls())

    def trial_finished(self, record: Mapping[str, Any]) -> None:
        self._notify("harness_trial_finished", record=record)

    def cell_finished(self, cell: Mapping[str, Any]) -> None:
        self._notify("harness_cell_finished", cell=cell)

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook through ``pm.hook``; an exception is logged and ignored (it never
        fails a trial or a cell), and the observers after the failing one miss that event.

        The console says it once per plugin and hook, in one line (an observer failing on every
        trial would otherwise bury the progress in tracebacks); each traceback goes to the run's
        ``harness.log``."""
        from harness.logs import LOG_ONLY

        hook = getattr(self.pm.hook, hook_name)
        try:
            hook(**kwargs)
        except Exception as exc:
            culprit = _culprit(hook, exc)
            LOG_ONLY.warning("plugin %r failed in %s (ignored)", culprit, hook_name, exc_info=True)
            if (culprit, hook_name) not in self._failed_observers:
                self._failed_observers.add((culprit, hook_name))
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                log.warning("plugin %r failed in %s (ignored): %s%s; tracebacks in the run's harness.log, "
                            "later failures there only", culprit, hook_name, type(exc).__name__,
                            f": {message}" if message else "")


def _culprit(hook: Any, exc: BaseException) -> str:
    """The plugin whose implementation of ``hook`` raised ``exc`` (found in the traceback)."""
    codes = {getattr(impl.function, "__code__", None): impl.plugin_name for impl in hook.get_hookimpls()}
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in codes:
            return codes[tb.tb_frame.f_code]
        tb = tb.tb_next
    return "unknown"


def load_registry(select: Sequence[str] | None = None,
                  extra_plugins: Iterable[tuple[str, object]] = ()) -> Registry:
    """Shortcut: a fresh plugin manager and its registry."""
    return Registry(create_plugin_manager(select, extra_plugins))
