"""The ``slurm`` launcher without a cluster: its options, what it would submit, and the launches
it refuses in one line before anything is written (no job, no run folder)."""
from __future__ import annotations

from pathlib import Path

import pytest
from harness_plugins.launchers.slurm import SlurmLauncher

from harness.cli import build_parser, config_from_args, default_options, main
from harness.errors import UsageError
from harness.registry import load_registry
from harness.testing import LauncherContract


class TestSlurmLauncherContract(LauncherContract):
    """Factory and storage refusals here; the launch itself runs against a real Slurm in
    ``test_slurm.py`` (it needs a cluster and a database server)."""

    launcher_name = "slurm"


def _launcher(**options: object) -> SlurmLauncher:
    return SlurmLauncher({**default_options(load_registry()), **options})


def test_options_become_the_sbatch_flags_and_submitit_parameters() -> None:
    launcher = _launcher(slurm_partition="gpu", slurm_time=240, slurm_gpus_per_task=1, slurm_cpus_per_task=8,
                         slurm_mem="32G", slurm_array=16, slurm_parallelism=4,
                         slurm_sbatch=["--account=nas", "qos=high", "--exclusive"], slurm_setup=["module load cuda"])
    assert launcher.flags() == ["--time=240", "--array=0-15%4", "--requeue", "--partition=gpu", "--cpus-per-task=8",
                                "--mem=32G", "--gpus-per-task=1", "--account=nas", "--qos=high", "--exclusive"]
    params = launcher.parameters("run-1")
    assert params["partition"] == "gpu" and params["time"] == 240 and params["gpus_per_task"] == 1
    assert params["cpus_per_task"] == 8 and params["mem"] == "32G" and params["array_parallelism"] == 4
    assert params["additional_parameters"] == {"requeue": True, "account": "nas", "qos": "high", "exclusive": True}
    assert params["setup"] == ["module load cuda"] and params["signal_delay_s"] == 120


def test_defaults_leave_resources_to_the_cluster() -> None:
    launcher = _launcher()
    assert launcher.flags() == ["--time=60", "--array=0-3%4", "--requeue"]
    assert not {"partition", "cpus_per_task", "mem", "gpus_per_task"} & set(launcher.parameters("r"))


@pytest.mark.parametrize("options, culprit", [
    ({"slurm_array": 0}, "--slurm-array 0"), ({"slurm_time": 0}, "--slurm-time 0"),
    ({"slurm_gpus_per_task": -1}, "--slurm-gpus-per-task -1"), ({"slurm_sbatch": ["-A nas"]}, "long form"),
    ({"slurm_sbatch": ["--"]}, "--slurm-sbatch"),
])
def test_bad_options_are_one_line(options: dict[str, object], culprit: str) -> None:
    with pytest.raises(UsageError, match=culprit) as info:
        _launcher(**options)
    assert "\n" not in str(info.value)


def test_launcher_options_do_not_change_the_run_id() -> None:
    registry = load_registry()
    parser = build_parser(registry)
    base = ["bench", "--datasets", "nb201-cifar10", "--spaces", "nb201", "--algorithms", "random"]
    plain = config_from_args(parser.parse_args(base), registry)
    slurm = config_from_args(parser.parse_args([*base, "--launcher", "slurm", "--detach", "--slurm-array", "8",
                                                "--slurm-partition", "gpu", "--slurm-sbatch=--account=x"]), registry)
    assert plain.run_id == slurm.run_id


@pytest.mark.parametrize("storage, says", [(None, "journal file"), ("sqlite:///{tmp}/runs.db", "SQLite")])
def test_a_storage_only_this_machine_reaches_is_refused(bench_args: list[str], tmp_path: Path, storage: str | None,
                                                         says: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--storage", storage.format(tmp=tmp_path)] if storage else []
    assert main([*bench_args, "--launcher", "slurm", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "postgresql://" in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs.db").exists()


def test_jobs_and_a_machine_without_sbatch_are_refused(bench_args: list[str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    server = ["--launcher", "slurm", "--storage", "postgresql://u:p@127.0.0.1:1/db"]  # not opened: refused first
    assert main([*bench_args, *server, "--jobs", "2"]) == 2
    assert "--slurm-array" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main([*bench_args, *server]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sbatch" in err and "login node" in err
    assert not (tmp_path / "results").exists()
