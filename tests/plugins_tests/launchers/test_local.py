"""The ``local`` launcher: the built-in launcher contract, and ``--detach`` refused in one line."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.testing import LauncherContract


@pytest.mark.slow  # the launch spawns a worker process, which imports torch
class TestLocalLauncher(LauncherContract):
    launcher_name = "local"
    launch_args = ["--jobs", "2"]


def test_detach_from_local_workers_is_one_line_before_anything_is_written(
        bench_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*bench_args, "--detach"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--detach" in err and "slurm" in err
    assert not (tmp_path / "results").exists()


def test_an_unknown_launcher_names_the_known_ones(bench_args: list[str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*bench_args, "--launcher", "k8s"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown launcher 'k8s'" in err and "local" in err and "slurm" in err
    assert not (tmp_path / "results").exists()
