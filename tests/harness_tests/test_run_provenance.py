"""A run continued after an upgrade says so, and run.json records it: its trials mix versions."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from harness import __version__
from harness.cli import main
from harness.metadata import version_changes
from harness.registry import load_registry


def test_version_changes_lists_what_both_sides_list_and_differs() -> None:
    registry = load_registry()
    now = registry.plugin_versions()
    plugin = next(iter(now))
    started = {"harness_version": "0.0.1", "plugins": {**now, plugin: "0.0.0-old", "gone-plugin": "1.0"},
               "libraries": {"optuna": "1.0.0", "numpy": __import__("numpy").__version__}}
    changes = version_changes(started, registry)
    assert changes["harness"] == ["0.0.1", __version__]
    assert changes[f"plugin {plugin}"] == ["0.0.0-old", now[plugin]]
    assert changes["library optuna"][0] == "1.0.0" and changes["library optuna"][1] != "1.0.0"
    # the same version, a plugin gone or installed since, a library an older run.json did not list
    assert set(changes) == {"harness", f"plugin {plugin}", "library optuna"}
    same = {"harness_version": __version__, "plugins": now, "libraries": {}}
    assert version_changes(same, registry) == {}


def test_a_run_resumed_with_another_plugin_version_says_so_once_and_records_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

    table = write_synthetic_table(tmp_path / "nb201.csv")
    args = ["bench", "--datasets", "nb201-cifar100", "--table", str(table), "--spaces", "nb201", "--algorithms",
            "random", "--samplers", "random", "--pruners", "none", "--seeds", "0", "--trials", "5", "--results",
            str(tmp_path), "--run-id", "p", "--no-progress", "--reporters", "summary"]
    assert main(args) == 0
    run_file = tmp_path / "p" / "run.json"
    started = json.loads(run_file.read_text())
    assert "version_changes" not in started
    plugin = next(iter(started["plugins"]))
    started["plugins"][plugin] = "0.0.0-old"
    run_file.write_text(json.dumps(started))
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert main(args) == 0
        lines = [r.getMessage() for r in caplog.records if "continues with other versions" in r.getMessage()]
        assert len(lines) == 1 and f"plugin {plugin} 0.0.0-old -> " in lines[0], lines
        recorded = json.loads(run_file.read_text())["version_changes"]
        assert len(recorded) == 1  # the same changes are recorded once, however often the run resumes
        assert recorded[0]["changes"] == {f"plugin {plugin}": ["0.0.0-old", load_registry().plugin_versions()[plugin]]}
