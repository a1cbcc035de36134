"""A real third-party package (tests/sample_plugin), installed with pip, is discovered through its
entry point with no change to the harness."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "sample_plugin"

pytestmark = pytest.mark.slow  # pip install and real runs in subprocesses


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    source = tmp_path_factory.mktemp("src") / "sample_plugin"
    shutil.copytree(SAMPLE, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def _harness(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], env=env, capture_output=True, text=True,
                          cwd=cwd)


def test_installed_plugin_shows_in_list(installed: dict[str, str]) -> None:
    out = _harness(installed, "list").stdout
    rows = {tuple(line.split()[:4]) for line in out.splitlines()}
    for kind, name in [("sampler", "sample-random"), ("dataset", "sample-blobs"),
                       ("algorithm", "sample-hillclimb"), ("reporter", "sample-counts")]:
        assert (kind, name, "sample", "0.3.1") in rows


def test_without_the_package_it_is_absent() -> None:
    out = _harness(dict(os.environ), "list").stdout
    assert "sample-random" not in out


def test_third_party_components_run_in_a_grid(installed: dict[str, str], tmp_path: Path) -> None:
    proc = _harness(installed, "bench", "--datasets", "sample-blobs", "--samplers", "sample-random",
                    "--algorithms", "sampler,sample-hillclimb", "--pruners", "none", "--seeds", "0", "--trials", "2",
                    "--epochs", "2", "--reporters", "summary,sample-counts", "--results", str(tmp_path),
                    "--no-progress", "--run-id", "tp")
    assert proc.returncode == 0, proc.stderr
    cells = pd.read_csv(tmp_path / "tp" / "cells.csv").set_index("algorithm")
    assert cells.loc["sampler", "state"] == "done"
    assert cells.loc["sample-hillclimb", "state"] == "not_applicable"
    assert cells.loc["sample-hillclimb", "reason"] == "algorithm sample-hillclimb: space lacks mutate, sample"
    counts_file = tmp_path / "tp" / "sample-counts.json"
    counts = json.loads(counts_file.read_text())
    assert counts == {"sample-blobs|manual|convfc|sampler|sample-random|none|0": {"complete": 2}}
    assert "sample-counts: 1 cells" in proc.stdout
    # `harness report` takes a reporter's option and re-renders with it
    report = _harness(installed, "report", str(tmp_path / "tp"), "--reporters", "sample-counts",
                      "--sample-counts-indent", "4")
    assert report.returncode == 0, report.stderr
    assert counts_file.read_text() == json.dumps(counts, indent=4)
