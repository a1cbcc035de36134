"""Many machines: workers share one run through Optuna's RDB storage on a real PostgreSQL server.

Needs ``HARNESS_TEST_POSTGRES_URL`` (``.ci/postgres`` starts a server and prints it); CI sets it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not URL, reason="HARNESS_TEST_POSTGRES_URL not set (run .ci/postgres)")]


def test_workers_on_two_machines_share_cells_through_postgres(tmp_path: Path) -> None:
    run_id = f"pg-{uuid.uuid4().hex[:8]}"
    common = ["--storage", str(URL), "--run-id", run_id, "--trials", "6", "--epochs", "2", "--seeds", "0,1",
              "--samplers", "tpe", "--pruners", "median", "--max-per-class", "30", "--no-progress"]
    # "machine B": a worker with its own results folder, joining through the database only
    other = subprocess.Popen([sys.executable, "-m", "harness", "worker", *common, "--results", str(tmp_path / "b")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from harness.cli import main

    try:
        assert main(["bench", *common, "--results", str(tmp_path / "a")]) == 0
        assert other.wait(timeout=600) == 0
    finally:
        other.kill()
        other.wait()
    assert main(["report", run_id, "--results", str(tmp_path / "a")]) == 0  # re-export after B finished
    trials = pd.read_csv(tmp_path / "a" / run_id / "trials.csv")
    finished = trials[trials["state"].isin(["complete", "pruned"])]
    per_cell = finished.groupby("cell").size()
    assert len(per_cell) == 2 and ((per_cell >= 6) & (per_cell <= 7)).all()
    assert not trials.duplicated(["cell", "trial"]).any()
    assert set(finished["device"]) == {"cpu"}
    # a trial asked past the budget when both machines asked at once ends as "surplus": never trained, no device
    assert trials.loc[~trials["state"].isin(["complete", "pruned"]), "device"].isna().all()
