"""Lifecycle hooks reach plugins with the documented arguments."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

import pytest

from harness import hookimpl
from harness.cli import build_parser, config_from_args
from harness.config import RunConfig
from harness.registry import load_registry
from harness.runner import run_bench


class Recorder:
    def __init__(self) -> None:
        self.trials: list[dict[str, Any]] = []
        self.cells: list[dict[str, Any]] = []

    @hookimpl
    def harness_addoption(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--recorder-tag", default="none")

    @hookimpl
    def harness_run_metadata(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"tag": config["options"]["recorder_tag"]}

    @hookimpl
    def harness_trial_finished(self, record: Mapping[str, Any]) -> None:
        self.trials.append(dict(record))

    @hookimpl
    def harness_cell_finished(self, cell: Mapping[str, Any]) -> None:
        self.cells.append(dict(cell))


@pytest.mark.slow
def test_lifecycle_hooks(tmp_path: Path) -> None:
    recorder = Recorder()
    registry = load_registry(extra_plugins=[("recorder", recorder)])
    args = build_parser(registry).parse_args(
        ["bench", "--recorder-tag", "xyz", "--trials", "2", "--epochs", "1", "--seeds", "0", "--samplers", "random",
         "--pruners", "none", "--results", str(tmp_path), "--max-per-class", "20", "--no-progress"])
    config: RunConfig = config_from_args(args, registry)
    results = run_bench(config, registry)
    metadata = json.loads((config.run_dir / "run.json").read_text())
    assert metadata["plugins_metadata"]["recorder"] == {"tag": "xyz"}
    assert [r["trial"] for r in recorder.trials] == [0, 1]
    assert recorder.trials[0]["val_accuracy"] == results.trials.iloc[0]["val_accuracy"]
    assert len(recorder.cells) == 1 and recorder.cells[0]["trials_complete"] == 2
