"""The command line, called in-process: exit codes, one-line errors, end-to-end runs."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness import hookimpl
from harness.cli import build_parser, config_from_args, main
from harness.components import AlgorithmSpec, ReporterSpec
from harness.config import execution_only
from harness.registry import load_registry


def _run_dir(results: Path) -> Path:
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    return run_dir


def test_list_shows_every_builtin_with_plugin_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind, name, plugin in [("dataset", "digits", "digits"), ("sampler", "tpe", "samplers"),
                               ("pruner", "hyperband", "pruners"), ("space", "convfc", "convfc"),
                               ("algorithm", "sampler", "sampler-algorithm"), ("reporter", "summary", "summary")]:
        line = next(l for l in out.splitlines() if l.split()[:3] == [kind, name, plugin])
        assert line.split()[3] == "0.1.0"


def test_list_does_not_import_torch() -> None:
    code = "import sys; from harness.cli import main; main(['list']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_unknown_plugin_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--plugins", "samplers,nope", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown plugin 'nope'" in err and "samplers" in err


def test_unknown_component_is_one_line_exit_2(bench_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*bench_args, "--samplers", "tpe,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown sampler 'bogus'" in err and "tpe" in err


def test_bad_fix_and_device_are_one_line_errors(bench_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*bench_args, "--fix", "optimizer=lbfgs"]) == 2
    assert "optimizer must be one of" in capsys.readouterr().err
    assert main([*bench_args, "--device", "tpu"]) == 2
    assert "--device 'tpu'" in capsys.readouterr().err


def test_plugins_selection_restricts_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--plugins", "samplers", "list"]) == 0
    kinds = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    # the manual generator and the local launcher load whatever --plugins selects (axis identity, default)
    assert kinds == {"sampler", "generator", "launcher"}


@pytest.mark.slow
def test_bench_runs_grid_writes_tables_and_report_rerenders(bench_args: list[str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    args = [*bench_args, "--samplers", "random,nsga2", "--pruners", "none,median"]
    assert main(args) == 0
    out = capsys.readouterr().out
    run_dir = _run_dir(tmp_path / "results")
    trials = pd.read_csv(run_dir / "trials.csv")
    cells = pd.read_csv(run_dir / "cells.csv")
    assert len(cells) == 4
    na = cells[cells["state"] == "not_applicable"]
    assert list(zip(na["sampler"], na["pruner"])) == [("nsga2", "median")]
    assert "multi-objective" in na["reason"].iloc[0]
    assert sorted(cells[cells["state"] == "done"]["trials_complete"]) == [3, 3, 3]
    assert len(trials) == 9 and set(trials["state"]) == {"complete"}
    assert trials["val_accuracy"].between(0, 1).all() and trials["test_accuracy"].between(0, 1).all()
    assert (trials["madds"] > 0).all() and (trials["params"] > 0).all() and (trials["epochs"] == 2).all()
    assert "n/a: sampler nsga2 is multi-objective" in out
    nsga = cells[(cells["sampler"] == "nsga2") & (cells["pruner"] == "none")]
    assert nsga["note"].iloc[0] == "sampler nsga2 draws its first 50 trials at random: with 3 trials per cell it is random search"
    assert cells[cells["sampler"] == "random"]["note"].isna().all()
    assert "it is random search" in out
    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["plugins"]["samplers"] == "0.1.0" and metadata["libraries"]["optuna"]
    assert metadata["config"]["trials"] == 3
    (run_dir / "summary.md").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "summary.md").exists()
    assert "| digits | convfc | sampler | random | none | manual | 1 |" in capsys.readouterr().out


@pytest.mark.slow
def test_rerun_resumes_without_repeating(bench_args: list[str], tmp_path: Path) -> None:
    assert main(bench_args) == 0
    run_dir = _run_dir(tmp_path / "results")
    first = pd.read_csv(run_dir / "trials.csv")
    assert main(bench_args) == 0
    again = pd.read_csv(run_dir / "trials.csv")
    pd.testing.assert_frame_equal(first, again)
    # naming the run explicitly is the same run: nothing is recomputed
    assert main([*bench_args, "--run-id", run_dir.name]) == 0
    pd.testing.assert_frame_equal(first, pd.read_csv(run_dir / "trials.csv"))
    # the budget defines the run: a bigger one under the same run id is refused, not mixed in
    assert main([*bench_args, "--run-id", run_dir.name, "--trials", "4"]) == 2


@pytest.mark.slow
def test_same_run_id_with_other_settings_is_refused(bench_args: list[str], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*bench_args, "--run-id", "r"]) == 0
    assert main([*bench_args, "--run-id", "r", "--epochs", "3"]) == 2
    assert "different settings (epochs)" in capsys.readouterr().err


def test_missing_data_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    code = main(["bench", "--datasets", "cifar100", "--data-dir", str(tmp_path / "nowhere"), "--results",
                 str(results), "--trials", "1", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cifar-100-python" in err
    assert not results.exists()


def test_plugins_option_may_follow_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--plugins", "pruners"]) == 0
    kinds = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert kinds == {"pruner", "generator", "launcher"}  # manual, local: always loaded


@pytest.mark.parametrize("args, message", [(["--fix", "batch_size=0"], "batch_size must be at least 1"),
                                           (["--fix", "lr=-1"], "lr must be positive"),
                                           (["--max-per-class", "0"], "--max-per-class must be at least 1")])
def test_nonsense_values_are_one_line_errors(bench_args: list[str], args: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*bench_args, *args]) == 2
    assert message in capsys.readouterr().err


def test_file_storage_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.config import absolute_storage_url

    monkeypatch.chdir(tmp_path)
    assert absolute_storage_url("sqlite:///runs.db") == f"sqlite:///{tmp_path / 'runs.db'}"
    assert absolute_storage_url("sqlite:////abs/runs.db") == "sqlite:////abs/runs.db"
    assert absolute_storage_url("journal:j.log") == f"journal:{tmp_path / 'j.log'}"
    assert absolute_storage_url("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.slow
def test_report_elsewhere_reads_the_same_sqlite_storage(bench_args: list[str], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*bench_args, "--storage", "sqlite:///runs.db", "--run-id", "s"]) == 0
    before = pd.read_csv(tmp_path / "results" / "s" / "trials.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["report", str(tmp_path / "results" / "s")]) == 0
    pd.testing.assert_frame_equal(before, pd.read_csv(tmp_path / "results" / "s" / "trials.csv"))
    assert not (elsewhere / "runs.db").exists()


def test_bad_plugin_option_value_is_one_line_exit_2(bench_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*bench_args, "--convfc-max-conv", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--convfc-max-conv" in err


class _OptionPlugin:
    """A plugin with an algorithm, a computing option and an execution-only (reporter) option."""

    @hookimpl
    def harness_addoption(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--opt-depth", type=int, default=3)
        execution_only(parser.add_argument("--opt-latex-style", default="booktabs"))

    @hookimpl
    def harness_algorithms(self) -> list[AlgorithmSpec]:
        return [AlgorithmSpec(name="opt-algo", description="x", factory=lambda options: None)]  # type: ignore[arg-type,return-value]


def _run_id(*args: str) -> str:
    registry = load_registry(extra_plugins=[("opt", _OptionPlugin())])
    parsed = build_parser(registry).parse_args(["bench", "--algorithms", "opt-algo", *args])
    return str(config_from_args(parsed, registry).run_id)


def test_execution_only_options_stay_out_of_the_run_id() -> None:
    assert _run_id("--opt-latex-style", "plain") == _run_id()
    assert _run_id("--cifar100-verify-md5", "never") == _run_id()  # a built-in one: checking files
    assert _run_id("--opt-depth", "4") != _run_id()


@pytest.mark.slow
def test_report_takes_plugin_options_over_the_stored_ones(bench_args: list[str], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.registry as registry_module

    assert main([*bench_args, "--run-id", "r"]) == 0
    seen: list[dict] = []

    def reporter_factory(options: dict) -> Any:
        seen.append(options)
        return type("R", (), {"report": lambda self, results, out: ""})()

    class Plugin(_OptionPlugin):
        @hookimpl
        def harness_reporters(self) -> list[ReporterSpec]:
            return [ReporterSpec(name="opt-report", description="x", factory=reporter_factory)]

    # `harness` loads plugins from entry points: register this one with them
    monkeypatch.setattr(registry_module, "load_registry",
                        lambda select=None: registry_module.Registry(
                            registry_module.create_plugin_manager(select, [("opt", Plugin())])))
    assert main(["report", str(tmp_path / "results" / "r"), "--reporters", "opt-report",
                 "--opt-latex-style", "plain"]) == 0
    assert main(["report", str(tmp_path / "results" / "r"), "--reporters", "opt-report"]) == 0
    assert [o["opt_latex_style"] for o in seen] == ["plain", "booktabs"]  # the given value, else the default
    assert seen[0]["epochs"] == 2  # the run's own options are kept


def test_report_help_lists_plugin_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--cifar100-verify-md5" in out and "(default: auto)" in " ".join(out.split())


def test_bench_exports_the_run_once(bench_args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's own export feeds the reporters: the storage is not read back a second time."""
    import harness.results
    import harness.runner

    calls: list[Path] = []
    original = harness.results.export_run

    def counting(run_dir: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(run_dir)
        return original(run_dir, *args, **kwargs)

    monkeypatch.setattr(harness.runner, "export_run", counting)
    monkeypatch.setattr(harness.results, "export_run", counting)
    assert main([*bench_args, "--reporters", "summary"]) == 0
    assert len(calls) == 1
