"""The sample plugin's own tests, written with the public kit (harness.testing) only."""

from __future__ import annotations

import json
from pathlib import Path

import harness_sample_plugin as plugin

from harness.testing import (
    TINY_OPTIMUM,
    AlgorithmContract,
    ReporterContract,
    TinySpace,
    run_trials,
    sample_results,
    tiny_score,
)

PLUGIN = [("sample", plugin)]


class TestHillClimb(AlgorithmContract):
    algorithm_name = "sample-hillclimb"
    extra_plugins = PLUGIN


class TestCounts(ReporterContract):
    reporter_name = "sample-counts"
    extra_plugins = PLUGIN


def test_hill_climb_finds_the_optimum_and_labels_its_moves() -> None:
    cell = run_trials(plugin.HillClimb(), TinySpace(), 30, tiny_score, seed=0)
    assert cell.best().arch == TINY_OPTIMUM
    assert [row["algo.role"] for row in cell.trial_rows()] == ["init"] + ["neighbour"] * 29


def test_counts_match_the_trials_and_indent_is_only_layout(tmp_path: Path) -> None:
    results = sample_results(tmp_path / "run")
    expected = results.trials.groupby("cell")["state"].value_counts().to_dict()
    for indent in (1, 4):
        out = tmp_path / f"out{indent}"
        out.mkdir()
        assert plugin.Counts(indent).report(results, out) == f"sample-counts: {results.trials['cell'].nunique()} cells"
        data = json.loads((out / "sample-counts.json").read_text())
        assert {(c, s): n for c, states in data.items() for s, n in states.items() if n} == expected
    assert (tmp_path / "out1" / "sample-counts.json").read_text() != (
        tmp_path / "out4" / "sample-counts.json"
    ).read_text()
