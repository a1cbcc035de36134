"""Plugin loading and the registry: selection, validation, conflicts, versions."""
from __future__ import annotations

import importlib.metadata
import inspect
import types
from pathlib import Path

import pytest

import harness
from harness import hookimpl, hookspecs
from harness.components import SamplerSpec
from harness.errors import PluginError, UsageError
from harness.registry import create_plugin_manager, load_registry

ROOT = Path(__file__).resolve().parents[2]


def _sampler_plugin(name: str) -> object:
    class Plugin:
        @hookimpl
        def harness_samplers(self) -> list[SamplerSpec]:
            return [SamplerSpec(name=name, description="x", factory=lambda req: None)]  # type: ignore[arg-type,return-value]

    return Plugin()


def test_every_builtin_module_is_an_entry_point() -> None:
    declared = {ep.value for ep in importlib.metadata.entry_points(group="harness")
                if ep.value.startswith("harness_plugins.")}
    modules = {"harness_plugins." + ".".join(p.relative_to(ROOT / "plugins").with_suffix("").parts)
               for p in (ROOT / "plugins").rglob("*.py")
               if p.name != "__init__.py" and not p.name.startswith("_")}
    assert modules == declared


def test_selection_loads_only_named_plugins() -> None:
    registry = load_registry(["pruners"])
    assert registry.names("pruner") == ["hyperband", "median", "none", "sha"]
    assert registry.names("sampler") == []


def test_unknown_plugin_lists_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown plugin 'zzz'; known plugins: .*samplers"):
        create_plugin_manager(["zzz"])


def test_unknown_component_lists_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown pruner 'sh'; known pruners: hyperband, median, none, sha"):
        load_registry(["pruners"]).get("pruner", "sh")


def test_misspelled_hook_fails_at_startup() -> None:
    class Typo:
        @hookimpl
        def harness_sampler(self) -> list:  # missing "s"
            return []

    with pytest.raises(PluginError, match="'typo' implements an unknown hook"):
        create_plugin_manager(["typo"], extra_plugins=[("typo", Typo())])


def test_same_name_from_two_plugins_names_both() -> None:
    with pytest.raises(PluginError, match="sampler 'tpe' is registered by both plugin 'samplers' and plugin 'copy'"):
        load_registry(["samplers", "copy"], extra_plugins=[("copy", _sampler_plugin("tpe"))])


def test_a_plugin_implementing_a_hook_twice_registers_each_name_once() -> None:
    """pluggy lets one plugin implement a hook under two function names (``specname``): both are
    its registrations, not a clash with itself; a name both return is one, named as such."""
    from harness.components import SamplerSpec

    def plugin(second: str) -> object:
        class Twice:
            @hookimpl
            def harness_samplers(self) -> list[SamplerSpec]:
                return [SamplerSpec(name="one", description="x", factory=lambda request: None)]

            @hookimpl(specname="harness_samplers")
            def more_samplers(self) -> list[SamplerSpec]:
                return [SamplerSpec(name=second, description="x", factory=lambda request: None)]
        return Twice()

    assert load_registry(["twice"], extra_plugins=[("twice", plugin("two"))]).names("sampler") == ["one", "two"]
    with pytest.raises(PluginError, match="sampler 'one' is registered twice by plugin 'twice'"):
        load_registry(["twice"], extra_plugins=[("twice", plugin("one"))])


def test_hook_returning_wrong_kind_names_plugin() -> None:
    class Wrong:
        @hookimpl
        def harness_pruners(self) -> list:
            return [SamplerSpec(name="x", description="x", factory=lambda req: None)]  # type: ignore[arg-type,return-value]

    with pytest.raises(PluginError, match="plugin 'wrong': harness_pruners returned"):
        load_registry(["wrong"], extra_plugins=[("wrong", Wrong())])


def test_incompatible_hookspec_major_is_refused() -> None:
    module = types.ModuleType("future_plugin")
    module.HARNESS_HOOKSPEC = "2.0"  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="needs hook contract 2.0, this harness provides 1"):
        create_plugin_manager(["future"], extra_plugins=[("future", module)])
    module.HARNESS_HOOKSPEC = harness.HOOKSPEC_VERSION.split(".")[0]  # type: ignore[attr-defined]
    create_plugin_manager(["future"], extra_plugins=[("future", module)])


def test_plugin_versions_come_from_distributions() -> None:
    versions = load_registry(["samplers", "extra"], extra_plugins=[("extra", _sampler_plugin("s"))]).plugin_versions()
    assert versions["samplers"] == importlib.metadata.version("harness")
    assert versions["extra"] == "unknown"


def test_observer_hook_errors_never_break_a_run(caplog: pytest.LogCaptureFixture) -> None:
    class Observer:
        @hookimpl
        def harness_trial_finished(self, record: dict) -> None:
            raise RuntimeError("observer bug")

    registry = load_registry(["obs"], extra_plugins=[("obs", Observer())])
    for trial in range(3):
        registry.trial_finished({"trial": trial})
    console = [r for r in caplog.records if r.name.startswith("harness.")]
    assert len(console) == 1, "the console says it once, in one line"
    assert console[0].getMessage().startswith("plugin 'obs' failed in harness_trial_finished (ignored): "
                                              "RuntimeError: observer bug; tracebacks in the run's harness.log")
    assert console[0].exc_info is None
    tracebacks = [r for r in caplog.records if r.name == "harness-log-only"]
    assert len(tracebacks) == 3 and all(r.exc_info for r in tracebacks)  # each one, for the run's log


def _spy_plugin(called: list[str]) -> types.ModuleType:
    """A plugin implementing every hook of the contract, recording each call."""
    module = types.ModuleType("spy")
    for name, spec in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("harness_"):
            continue
        params = list(inspect.signature(spec).parameters)

        def impl(*args: object, _name: str = name, **kwargs: object) -> object:
            called.append(_name)
            return {} if _name == "harness_run_metadata" else None if _name in _NOTHING else []

        impl.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params])
        setattr(module, name, hookimpl(impl))
    return module


_NOTHING = {"harness_addoption", "harness_trial_finished", "harness_cell_finished"}


def test_every_hook_is_documented_and_called_by_the_harness() -> None:
    """Each hook has a real docstring and the harness calls it: registering, parsing options,
    writing the run's metadata and observing trials and cells reach every hook there is."""
    from harness.cli import build_parser

    names = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("harness_")]
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc.splitlines()) >= 3, f"{name} needs a real docstring"
    called: list[str] = []
    registry = load_registry(["spy"], extra_plugins=[("spy", _spy_plugin(called))])
    build_parser(registry)
    registry.run_metadata({})
    registry.trial_finished({"trial": 0})
    registry.cell_finished({"cell": "c"})
    assert sorted(set(called)) == sorted(names)
