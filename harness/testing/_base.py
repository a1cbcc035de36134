"""What every contract shares: loading one component through the real plugin machinery, and the
options its factory receives (every loaded plugin's defaults, as at run time)."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from harness.registry import Registered, Registry, load_registry


class _Options:
    """``self.options``: the defaults of an empty ``harness bench`` command line (built-in and
    every loaded plugin's ``harness_addoption``), updated with the ``options`` a contract subclass
    declares (merged along the class hierarchy)."""

    def __get__(self, obj: Any, owner: type) -> dict[str, Any]:
        given: dict[str, Any] = {}
        for klass in reversed(owner.__mro__):
            given.update(klass.__dict__.get("_options_given", {}))
        if obj is None:
            return given
        if "_options_cache" not in obj.__dict__:
            from harness.cli import default_options

            obj.__dict__["_options_cache"] = {**default_options(obj.registry()), **given}
        return dict(obj.__dict__["_options_cache"])


#: Built-in plugins the kit builds its cells with (Optuna's ``random`` sampler, pruner ``none``):
#: loaded beside a contract's ``plugins`` selection.
KIT_PLUGINS = ("samplers", "pruners")


class ContractBase:
    #: Plugin names to load (``None``: every installed plugin, so an installed plugin that fails to
    #: load fails these tests too); :data:`KIT_PLUGINS` are added to a selection.
    plugins: ClassVar[list[str] | None] = None
    #: (name, module or object) pairs registered besides the installed plugins, as if installed:
    #: test a plugin module before it is packaged (``[("my-plugin", my_package.harness_plugin)]``).
    extra_plugins: ClassVar[list[tuple[str, object]]] = []
    #: Options passed to factories, as if given on the command line. Declare only the ones you
    #: set (``options = {"table": "data/nb201.csv"}``); every other option has its default, so a
    #: factory's ``options["my_option"]`` works under the kit as at run time.
    options: ClassVar[dict[str, Any]] = _Options()  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        given = cls.__dict__.get("options")
        if isinstance(given, Mapping):
            cls._options_given = dict(given)  # type: ignore[attr-defined]
            cls.options = _Options()  # type: ignore[assignment]

    def registry(self) -> Registry:
        if "_registry" not in self.__dict__:
            selected = None if self.plugins is None else list(dict.fromkeys([*KIT_PLUGINS, *self.plugins]))
            self.__dict__["_registry"] = load_registry(selected, self.extra_plugins)
        registry: Registry = self.__dict__["_registry"]
        return registry

    def registered(self, kind: str, name: str) -> Registered:
        return self.registry().get(kind, name)
