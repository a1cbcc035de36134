"""Shared fixtures: tiny budgets on real data, an isolated results folder per test."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def bench_args(tmp_path: Path) -> list[str]:
    """Arguments for a tiny, real `harness bench` on digits in an isolated results folder."""
    return ["bench", "--results", str(tmp_path / "results"), "--trials", "3", "--epochs", "2", "--seeds", "0",
            "--samplers", "random", "--pruners", "none", "--no-progress", "--max-per-class", "40"]


def read_trials(run_dir: Path) -> Any:
    import pandas as pd

    return pd.read_csv(run_dir / "trials.csv")
