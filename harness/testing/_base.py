"""What every contract shares: loading one component through the real plugin machinery."""
from __future__ import annotations

from typing import Any, ClassVar

from harness.registry import Registered, Registry, load_registry


class ContractBase:
    #: Plugin names to load (``None``: every installed plugin).
    plugins: ClassVar[list[str] | None] = None
    #: Options passed to factories, as if given on the command line.
    options: ClassVar[dict[str, Any]] = {}

    def registry(self) -> Registry:
        return load_registry(self.plugins)

    def registered(self, kind: str, name: str) -> Registered:
        return self.registry().get(kind, name)
