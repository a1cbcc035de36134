"""Fixtures for the NAS-Bench-201 search tests: one synthetic table per session.

The synthetic table (:mod:`harness_plugins.datasets._nb201_synthetic`) is written as a CSV in the
public extract's format and read back through the real ``nb201-table`` plugin, so the search tests
also exercise the table reader.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from harness_plugins.datasets._nb201_synthetic import write_synthetic_table


@pytest.fixture(scope="session")
def nb201_table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_table(tmp_path_factory.mktemp("nb201") / "nb201.csv")


@pytest.fixture(scope="session")
def cifar10_accuracy(nb201_table_path: Path) -> dict[str, float]:
    """arch id -> CIFAR-10 accuracy as a fraction, from the CSV."""
    from harness_plugins.datasets.nb201_table import load_table

    return {k: v / 100 for k, v in load_table(nb201_table_path)["CIFAR10TestAccuracy200Epochs"].items()}
