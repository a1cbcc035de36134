"""Contract for launcher plugins: the launcher's workers take a real grid to its exact budgets."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from harness.components import Launcher, LaunchRequest
from harness.errors import UsageError
from harness.testing._base import ContractBase

__all__ = ["LauncherContract"]


class LauncherContract(ContractBase):
    """Set ``launcher_name``. The checks: the factory builds a :class:`harness.components.Launcher`
    with the default options; a ``remote`` launcher refuses a storage only this machine reaches (a
    journal file, SQLite) in one line naming the launcher, before anything is written; and
    ``harness bench --launcher NAME`` on a small grid (:meth:`launch_grid`: tiny networks on
    digits) ends with every cell at exactly its budget, no trial counted twice, and the report
    written.

    The launch runs the installed plugin (its workers are other processes, which find it through
    its entry point). Set ``launch_args`` to what the launcher needs there (``["--jobs", "2"]``, a
    partition...). A remote launcher's workers need a database server: return its URL from
    :meth:`launch_storage` (the launch test is skipped while it returns ``None``)."""

    launcher_name: ClassVar[str]
    #: options added to the launch test's ``harness bench`` command line
    launch_args: ClassVar[list[str]] = []
    #: the budget of each of the launch test's cells
    trials: ClassVar[int] = 4

    def make_launcher(self) -> Launcher:
        return self.registry().launcher(self.launcher_name, self.options)

    def launch_storage(self) -> str | None:
        """The ``--storage`` of the launch test (``None``: the run folder's journal file)."""
        return None

    def launch_grid(self, folder: Path) -> list[str]:
        """The launch test's grid, as ``harness bench`` options (``folder``: for files it needs):
        two seeds of a small convolutional network tuned by random search on scikit-learn's
        digits (no download), one short epoch per trial."""
        grid = "--datasets digits --spaces convfc --algorithms sampler --samplers random,tpe --pruners none"
        return [*grid.split(), "--seeds", "0,1", "--epochs", "1", "--max-per-class", "20", "--reporters", "summary"]

    def _request(self, folder: Path, storage: str) -> LaunchRequest:
        return LaunchRequest(
            launcher=self.launcher_name,
            run_id="contract",
            run_dir=folder / "contract",
            storage=storage,
            config={"jobs": 1, "storage": storage, "results": str(folder)},
            planned=[],
            options=self.options,
        )

    def test_factory_builds_a_launcher_with_the_default_options(self) -> None:
        assert isinstance(self.make_launcher(), Launcher)

    def test_a_remote_launcher_refuses_a_storage_only_this_machine_reaches(self, tmp_path: Path) -> None:
        launcher = self.make_launcher()
        if not launcher.remote:
            pytest.skip("not a remote launcher: its workers share this machine's storage")
        folder = tmp_path / "results"
        for url in (f"journal:{folder / 'contract' / 'optuna.journal'}", f"sqlite:///{folder / 'optuna.db'}"):
            with pytest.raises(UsageError) as info:
                launcher.check(self._request(folder, url))
            message = str(info.value)
            assert "\n" not in message and self.launcher_name in message, message
        assert not folder.exists(), "the launcher wrote before refusing the launch"

    def test_workers_take_a_grid_to_its_exact_budgets(self, tmp_path: Path) -> None:
        from harness.cli import main

        storage = self.launch_storage()
        if self.make_launcher().remote and storage is None:
            pytest.skip("launch_storage() gives no database server for the remote launcher's workers")
        run_id = f"launch-{uuid.uuid4().hex[:8]}"  # a fresh run, also on a database shared between tests
        results = tmp_path / "results"
        args = ["bench", *self.launch_grid(tmp_path), "--trials", str(self.trials), "--no-progress"]
        args += ["--launcher", self.launcher_name, "--results", str(results), "--run-id", run_id, *self.launch_args]
        assert main([*args, *(["--storage", storage] if storage else [])]) == 0
        trials = pd.read_csv(results / run_id / "trials.csv")
        cells = pd.read_csv(results / run_id / "cells.csv")
        assert len(cells) and cells["state"].eq("done").all(), cells[["cell", "state"]]
        assert not trials.duplicated(["cell", "trial"]).any()
        # a random learning rate may diverge: that trial is pruned (a NaN loss) and spends budget too
        spent = trials[trials["state"].isin(["complete", "pruned"])].groupby("cell").size()
        assert sorted(spent.index) == sorted(cells["cell"]) and spent.eq(self.trials).all(), spent
        assert (results / run_id / "summary.md").exists(), "the report was not written"
