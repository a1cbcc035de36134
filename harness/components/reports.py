"""Reports: a run's stored results and the reporters that render them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Reporter", "RunResults"]


@dataclass
class RunResults:
    """A run's stored results, as tidy tables (see ``results/README.md`` for the columns)."""

    run_dir: Path
    trials: pd.DataFrame
    cells: pd.DataFrame
    metadata: dict[str, Any]


class Reporter(ABC):
    """Turns a run's results into tables or plots."""

    @abstractmethod
    def report(self, results: RunResults, out_dir: Path) -> str:
        """Write files under ``out_dir`` and return text for the terminal (may be empty)."""

    def check_plan(self, planned: pd.DataFrame) -> None:
        """Called by ``harness bench`` before any cell runs, with the planned grid (one row per
        cell, the axis columns of ``cells.csv``). Raise :class:`harness.errors.UsageError` for an
        option value that can never fit it, so the user learns it in one line (exit 2) before the
        grid runs rather than after. The default accepts everything."""
