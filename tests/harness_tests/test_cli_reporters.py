"""A reporter that raises costs only its own output: the reporters after it still run, the results
stay as they are, stderr has one line naming the reporter and its plugin, the traceback goes to the
run's ``harness.log``, and ``harness bench`` / ``harness report`` exit with code 4."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

from harness import hookimpl
from harness.cli import EXIT_REPORTER_FAILED, main
from harness.components import Reporter, ReporterSpec, RunResults

TABLE_RUN = ["--datasets", "nb201-cifar10", "--spaces", "nb201", "--algorithms", "random", "--samplers", "random",
             "--pruners", "none", "--seeds", "0", "--trials", "3", "--no-progress"]
REPORTERS = ["--reporters", "first,boom,last"]


class _Marker(Reporter):
    """Writes ``<name>.txt`` so a test sees that it ran."""

    def __init__(self, name: str) -> None:
        self.name = name

    def report(self, results: RunResults, out_dir: Path) -> str:
        (out_dir / f"{self.name}.txt").write_text(f"{len(results.trials)} trials\n")
        return f"{self.name}: ok"


class _Boom(Reporter):
    def report(self, results: RunResults, out_dir: Path) -> str:
        raise ValueError("kaput\nsecond line of the message")


class _ReportersPlugin:
    @hookimpl
    def harness_reporters(self) -> list[ReporterSpec]:
        return [ReporterSpec(name="first", description="x", factory=lambda options: _Marker("first")),
                ReporterSpec(name="boom", description="x", factory=lambda options: _Boom()),
                ReporterSpec(name="last", description="x", factory=lambda options: _Marker("last"))]


@pytest.fixture
def with_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """`harness` loads plugins from entry points: add the test's plugin to them."""
    import harness.registry as registry_module

    monkeypatch.setattr(registry_module, "load_registry",
                        lambda select=None: registry_module.Registry(
                            registry_module.create_plugin_manager(select, [("boom-plugin", _ReportersPlugin())])))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_failure(run_dir: Path, out: str, err: str, before: dict[str, str]) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("harness: reporter 'boom' (plugin 'boom-plugin') failed: ValueError: kaput")
    assert "second line" not in lines[0] and str(run_dir / "harness.log") in lines[0]
    assert "first: ok" in out and "last: ok" in out
    assert (run_dir / "first.txt").exists() and (run_dir / "last.txt").exists()
    log = (run_dir / "harness.log").read_text()
    assert "Traceback" in log and "ValueError: kaput" in log and "reporter 'boom'" in log
    assert {name: _digest(run_dir / name) for name in before} == before


@pytest.mark.usefixtures("with_plugin")
def test_bench_and_report_survive_a_raising_reporter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = write_synthetic_table(tmp_path / "nb201.csv")
    results = tmp_path / "results"
    assert main(["bench", "--results", str(results), "--table", str(table), "--run-id", "r", *TABLE_RUN]) == 0
    run_dir = results / "r"
    tables = {name: _digest(run_dir / name) for name in ("trials.csv", "cells.csv")}
    capsys.readouterr()

    code = main(["bench", "--results", str(results), "--table", str(table), "--run-id", "r2", *TABLE_RUN,
                 *REPORTERS])
    out, err = capsys.readouterr()
    assert code == EXIT_REPORTER_FAILED == 4, err
    second = results / "r2"
    assert (second / "trials.csv").exists() and (second / "cells.csv").exists()
    _check_failure(second, out, err, {name: _digest(second / name) for name in ("trials.csv", "cells.csv")})

    code = main(["report", "r", "--results", str(results), *REPORTERS])
    out, err = capsys.readouterr()
    assert code == EXIT_REPORTER_FAILED, err
    _check_failure(run_dir, out, err, tables)


@pytest.mark.usefixtures("with_plugin")
def test_a_reporter_that_fails_in_its_factory_is_named_too(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_factory(options: Any) -> Reporter:
        raise KeyError("missing_option")

    table = write_synthetic_table(tmp_path / "nb201.csv")
    results = tmp_path / "results"
    monkeypatch.setattr(_ReportersPlugin, "harness_reporters", hookimpl(lambda self: [
        ReporterSpec(name="boom", description="x", factory=broken_factory),
        ReporterSpec(name="last", description="x", factory=lambda options: _Marker("last"))]))
    code = main(["bench", "--results", str(results), "--table", str(table), "--run-id", "f", *TABLE_RUN,
                 "--reporters", "boom,last"])
    out, err = capsys.readouterr()
    assert code == EXIT_REPORTER_FAILED, err
    assert len(err.splitlines()) == 1 and err.startswith("harness: reporter 'boom' (plugin 'boom-plugin') failed")
    assert "KeyError: 'missing_option'" in err and (results / "f" / "last.txt").exists()


@pytest.mark.usefixtures("with_plugin")
def test_a_reporter_that_returns_no_text_is_named_and_the_others_print(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``report`` must return the terminal text: a number instead is that reporter's bug (exit 4,
    one line), not a crash that loses the other reporters' text."""
    monkeypatch.setattr(_Boom, "report", lambda self, results, out_dir: 42)
    table = write_synthetic_table(tmp_path / "nb201.csv")
    results = tmp_path / "results"
    code = main(["bench", "--results", str(results), "--table", str(table), "--run-id", "n", *TABLE_RUN, *REPORTERS])
    out, err = capsys.readouterr()
    assert code == EXIT_REPORTER_FAILED, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("harness: reporter 'boom' (plugin 'boom-plugin') failed: TypeError: report() returned int")
    assert "first: ok" in out and "last: ok" in out
