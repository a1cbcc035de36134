"""The two types every component interface shares (kept apart so that no interface module imports
another in a cycle)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Architecture", "Options"]

#: An architecture: a JSON-serialisable dict (a space gives it a canonical identity, ``arch_id``).
Architecture = dict[str, Any]

#: Parsed command-line options (including those plugins add through ``harness_addoption``),
#: as a read-only mapping from option dest to value.
Options = Mapping[str, Any]
