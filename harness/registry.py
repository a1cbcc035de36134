"""Loading plugins and the typed facade over their hooks.

Only this module and the CLI call ``pm.hook`` (always through pluggy's public API:
``load_setuptools_entrypoints``, ``pm.hook``, ``subset_hook_caller``, so ``tryfirst``, ``trylast``
and hook wrappers work as in any pluggy host); everything else works with :class:`Registry`,
which holds the registered components by kind and name. A fresh plugin manager is made per run
(and per test), never a module global.
"""
from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pluggy

from harness import HOOKSPEC_VERSION, PROJECT_NAME, hookspecs
from harness.components import KINDS, ComponentSpec
from harness.errors import PluginError, UsageError

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


def create_plugin_manager(
    select: Sequence[str] | None = None,
    extra_plugins: Iterable[tuple[str, object]] = (),
) -> pluggy.PluginManager:
    """A fresh plugin manager with the ``harness`` entry-point plugins loaded.

    ``select`` restricts loading to those plugin names (``--plugins``); an unknown name is a
    :class:`UsageError` listing the known ones. ``extra_plugins`` are (name, plugin) pairs
    registered directly (tests, embedding). Unknown hooks fail loudly (``check_pending``).
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    available = _available_entry_points()
    extra = list(extra_plugins)
    known = sorted(set(available) | {name for name, _ in extra} | {"manual"})
    if select is not None:
        unknown = [name for name in select if name not in known]
        if unknown:
            raise UsageError(
                f"unknown plugin {', '.join(map(repr, unknown))}; known plugins: {', '.join(known)}"
            )
    wanted = set(select) if select is not None else None
    for name, ep in sorted(available.items()):
        if wanted is not None and name not in wanted:
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
    from harness import manual_generator

    pm.register(manual_generator, name="manual")  # the generator axis's identity, always present
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
        #: option dest -> the plugin whose ``harness_addoption`` added it (filled by the CLI)
        self.option_owners: dict[str, str] = {}
        #: option dests a plugin marked :func:`harness.config.execution_only` (filled by the CLI)
        self.execution_only_options: set[str] = set()
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
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
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
                    raise PluginError(f"{kind} {spec.name!r} is registered by both plugin {owners[spec.name]!r} "
                                      f"and plugin {impl.plugin_name!r}")
                owners[spec.name] = impl.plugin_name
        return owners

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

    def trial_finished(self, record: Mapping[str, Any]) -> None:
        self._notify("harness_trial_finished", record=record)

    def cell_finished(self, cell: Mapping[str, Any]) -> None:
        self._notify("harness_cell_finished", cell=cell)

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook through ``pm.hook``; an exception is logged and ignored (it never
        fails a trial or a cell), and the observers after the failing one miss that event."""
        hook = getattr(self.pm.hook, hook_name)
        try:
            hook(**kwargs)
        except Exception as exc:
            log.exception("plugin %r failed in %s (ignored)", _culprit(hook, exc), hook_name)


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
