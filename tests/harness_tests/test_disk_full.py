"""A full disk costs the command one line (exit 2) and nothing completed: a journal append cut
short is undone, a table being exported leaves no temporary file, and the rerun, once there is
room, goes on where the run stopped."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from harness.storage import open_storage


def _no_room_after(limit: int) -> Any:
    """``os.write`` on a disk that takes ``limit`` more bytes, then none."""
    real = os.write
    room = [limit]

    def write(fd: int, data: bytes) -> int:
        if room[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(data[:room[0]]))
        room[0] -= n
        return n

    return write


def test_an_append_cut_short_by_a_full_disk_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.journal

    journal = tmp_path / "optuna.journal"
    storage = open_storage(f"journal:{journal}")
    study = optuna.create_study(study_name="s", storage=storage)
    study.tell(study.ask(), 0.5)
    before = journal.read_bytes()
    monkeypatch.setattr(harness.journal.os, "write", _no_room_after(40))  # part of the next record fits
    with pytest.raises(OSError) as full:
        study.ask()
    assert full.value.errno == errno.ENOSPC
    assert journal.read_bytes() == before  # the 40 bytes written are gone: whole records only
    monkeypatch.undo()
    again = optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    again.tell(again.ask(), 0.7)  # no torn tail to refuse, no repair needed
    assert [t.value for t in again.get_trials()] == [0.5, 0.7]


def test_a_full_disk_is_one_line_and_the_rerun_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The export of trials.csv finds the disk full: exit 2, one line, no temporary file left; the
    rerun (room again) exports every trial."""
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

    from harness.cli import main

    table = write_synthetic_table(tmp_path / "nb201.csv")
    command = ["bench", "--datasets", "nb201-cifar10", "--table", str(table), "--spaces", "nb201", "--algorithms",
               "random", "--samplers", "random", "--pruners", "none", "--seeds", "0", "--trials", "20",
               "--results", str(tmp_path / "r"), "--run-id", "full", "--no-progress", "--reporters", "summary"]
    real = pd.DataFrame.to_csv

    def to_csv(self: pd.DataFrame, path: Any, *args: Any, **kwargs: Any) -> Any:
        Path(path).write_text("run_id,cell\n")  # what fitted
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("harness: error: no space left on the device writing ") and "rerun the same command" in err
    run_dir = tmp_path / "r" / "full"
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(pd.DataFrame, "to_csv", real)
    assert main(command) == 0
    trials = pd.read_csv(run_dir / "trials.csv")
    assert (trials["state"] == "complete").sum() == 20


@pytest.mark.parametrize("landed", ["part", "all"])
def test_an_append_interrupted_by_a_signal_keeps_the_journal_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, landed: str) -> None:
    """Ctrl-C may arrive after a write landed and before its count was kept: the file's size, not
    the count, says whether the record is whole (kept) or cut (undone)."""
    import harness.journal

    journal = tmp_path / "optuna.journal"
    storage = open_storage(f"journal:{journal}")
    study = optuna.create_study(study_name="s", storage=storage)
    before = journal.stat().st_size
    real = os.write

    def write(fd: int, data: bytes) -> int:
        real(fd, bytes(data[:len(data) // 2]) if landed == "part" else data)
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.journal.os, "write", write)
    with pytest.raises(KeyboardInterrupt):
        study.ask()
    monkeypatch.undo()
    data = journal.read_bytes()
    assert data.endswith(b"\n")
    assert (len(data) == before) == (landed == "part")  # a cut record is undone, a whole one kept
    again = optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    assert len(again.get_trials()) == (0 if landed == "part" else 1)
