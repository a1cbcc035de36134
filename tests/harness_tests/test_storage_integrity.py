"""The journal's lock, integrity checks and repair; SQLite's creation race; exports that never
wipe results; ``run.json`` written through unique temporary names."""
from __future__ import annotations

import fcntl
import json
import logging
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

import harness.journal as journal_module
from harness.errors import DataError, UsageError
from harness.grid import Cell, PlannedCell
from harness.journal import OwnerFileLock, check_journal, repair_journal
from harness.results import export_run
from harness.runfiles import check_run_id, read_run_json, write_json_atomic
from harness.storage import check_storage_url, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def fill(path: Path, n_trials: int = 4, study: str = "s") -> None:
    storage = open_storage(f"journal:{path}")
    optuna.create_study(storage=storage, study_name=study, load_if_exists=True).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=n_trials)


def n_trials(path: Path, study: str = "s") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(f"journal:{path}")).get_trials()


# --- the lock -------------------------------------------------------------------------------

def test_lock_held_by_a_killed_process_is_recovered_at_once_and_said_in_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = tmp_path / "optuna.journal"
    fill(journal)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from harness.journal import OwnerFileLock\n"
        f"OwnerFileLock({str(journal)!r}).acquire(); print('held', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert (tmp_path / "optuna.journal.lock").read_text()  # the holder's name is in the file
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
        holder.communicate()
    caplog.set_level(logging.WARNING, logger="harness.journal")
    started = time.monotonic()
    fill(journal, n_trials=1)  # Optuna's own file lock would wait out a 30 s grace period here
    assert time.monotonic() - started < 10
    recovered = [r.getMessage() for r in caplog.records if "which is gone" in r.getMessage()]
    assert len(recovered) == 1 and f"pid {holder.pid}" in recovered[0] and "\n" not in recovered[0]
    assert len(n_trials(journal)) == 5


def test_lock_excludes_other_holders_and_is_released(tmp_path: Path) -> None:
    path = str(tmp_path / "j")
    first, second = OwnerFileLock(path), OwnerFileLock(path)
    first.acquire()
    probe = subprocess.run([sys.executable, "-c", (
        "import fcntl, os, sys\n"
        f"fd = os.open({path + '.lock'!r}, os.O_RDWR)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n")],
        check=False)
    assert probe.returncode == 3  # another process cannot take it
    first.release()
    second.acquire()
    second.release()
    assert Path(path + ".lock").read_text().strip() == ""  # a clean release leaves no owner behind
    assert second.recovered is None


def _hold_lock_in_another_process(path: str, seconds: float) -> subprocess.Popen[bytes]:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({path!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\n"
        f"time.sleep({seconds})\nfcntl.flock(fd, fcntl.LOCK_UN)\ntime.sleep(5)\n")], stdout=subprocess.PIPE)
    assert holder.stdout is not None
    if holder.stdout.readline() != b"held\n":
        holder.kill()
        holder.communicate()
        raise AssertionError("the lock holder did not start")
    return holder


@pytest.mark.parametrize("spin, blocks", [(5.0, False), (0.0, True)])
def test_lock_waits_by_trying_again_then_by_blocking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     spin: float, blocks: bool) -> None:
    """A waiter whose holder lets go within ``spin`` takes the lock without ever sleeping in a
    blocking ``flock`` (a sleeper loses the lock to a holder that takes it again at once: two
    processes appending fell into single file); past ``spin`` it blocks, and still gets it."""
    lock = OwnerFileLock(str(tmp_path / "j"))
    path = lock.path
    holder = _hold_lock_in_another_process(path, 1.5)  # longer than any stall of this process
    monkeypatch.setattr(journal_module, "SPIN_SECONDS", spin)
    calls: list[int] = []
    real = journal_module.fcntl.flock

    def counting(fd: int, operation: int) -> None:
        calls.append(operation)
        real(fd, operation)

    monkeypatch.setattr(journal_module.fcntl, "flock", counting)
    try:
        started = time.monotonic()
        lock.acquire()
        assert time.monotonic() - started >= 0.5  # it did wait for the holder
        assert (fcntl.LOCK_EX in calls) is blocks  # the blocking form, only once the spin is over
        assert calls[-1] == (fcntl.LOCK_EX if blocks else fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):  # and it holds the lock now
            other = os.open(path, os.O_RDWR)
            try:
                real(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(other)
        lock.release()
    finally:
        lock.close()
        holder.kill()
        holder.communicate()


# --- torn tails and corrupt lines -----------------------------------------------------------

def test_a_torn_tail_is_one_line_and_never_appended_to(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    fill(journal)
    lines = journal.read_bytes().count(b"\n")
    journal.write_bytes(journal.read_bytes()[:-9])
    with pytest.raises(DataError, match=rf"journal {journal} line {lines}: incomplete last record") as info:
        open_storage(f"journal:{journal}")
    assert "\n" not in str(info.value) and "harness repair" in str(info.value)
    before = journal.read_bytes()
    storage = optuna.storages.JournalStorage.__new__(optuna.storages.JournalStorage)  # not replayed
    from harness.journal import SafeJournalBackend

    with pytest.raises(DataError, match="incomplete last record"):
        SafeJournalBackend(str(journal)).append_logs([{"op_code": 2, "worker_id": "w"}])
    assert journal.read_bytes() == before and storage is not None


def test_a_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    fill(journal)
    lines = journal.read_bytes().split(b"\n")
    lines[2] = b'{"op_code": 5, "trial_id": 0, garbage'
    journal.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=rf"journal {journal} line 3: not a complete JSON journal record"):
        open_storage(f"journal:{journal}")
    check = check_journal(journal)
    assert [n for n, _ in check.problems] == [3] and not check.torn_tail


def test_repair_keeps_every_complete_record_and_backs_up_the_original(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    fill(journal, n_trials=6)
    original = journal.read_bytes()
    complete = original.count(b"\n")
    journal.write_bytes(original + b'{"op_code":6,"worker_id":"w","trial_id":3,"st')  # torn tail
    report = repair_journal(journal)
    assert report.kept == complete and [n for n, _ in report.dropped] == [complete + 1]
    assert report.trial_ids == [3]
    assert journal.read_bytes() == original
    assert report.backup is not None and report.backup.read_bytes().startswith(original)
    assert len(n_trials(journal)) == 6


def test_repair_drops_a_lost_value_record_only_and_cuts_after_a_lost_trial(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    fill(journal, n_trials=5)
    lines = journal.read_bytes().split(b"\n")[:-1]
    ops = [json.loads(line)["op_code"] for line in lines]
    # a corrupt value record (set_trial_state_values of the last trial): only that line goes
    value_line = max(i for i, op in enumerate(ops) if op == 6)
    damaged = list(lines)
    damaged[value_line] = damaged[value_line][:20] + b"#"
    journal.write_bytes(b"\n".join(damaged) + b"\n")
    report = repair_journal(journal)
    assert len(report.dropped) == 1 and report.kept == len(lines) - 1
    trials = n_trials(journal)
    assert [t.state.name for t in trials].count("COMPLETE") == 4 and len(trials) == 5
    # a corrupt create_trial: later records could attach to the wrong trials, so they go too
    lines = journal.read_bytes().split(b"\n")[:-1]
    create = [i for i, line in enumerate(lines) if json.loads(line)["op_code"] == 4][2]
    lines[create] = b'{"op_code":4,"worker_id":"w" #'
    journal.write_bytes(b"\n".join(lines) + b"\n")
    report = repair_journal(journal)
    assert report.kept == create and len(report.dropped) == len(lines) - create
    assert len(n_trials(journal)) == 2


def test_repair_command_names_the_trials_touched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    journal = tmp_path / "optuna.journal"
    fill(journal, n_trials=3)
    journal.write_bytes(journal.read_bytes()[:-5])
    assert main(["repair", str(journal)]) == 0
    out = capsys.readouterr().out
    assert "dropped 1" in out and "s #2 (running)" in out and ".bak-" in out
    assert main(["repair", str(journal)]) == 0
    assert "nothing to repair" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["hello\n", "arch,accuracy\n|none~0|+,1.0\n|skip~0|+,2.0"])
def test_repair_refuses_a_file_that_is_not_a_journal_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    from harness.cli import main

    table = tmp_path / "nb201.csv"
    table.write_text(text)
    assert main(["repair", str(table)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {table} is not an Optuna journal") and "nothing was changed" in err
    assert table.read_text() == text and sorted(p.name for p in tmp_path.iterdir()) == ["nb201.csv"]


def test_repair_of_a_run_killed_before_its_first_export_exports_its_tables(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

    from harness.cli import main

    table = write_synthetic_table(tmp_path / "nb201.csv")
    assert main(["bench", "--datasets", "nb201-cifar10", "--table", str(table), "--spaces", "nb201", "--algorithms",
                 "random", "--samplers", "random", "--pruners", "none", "--seeds", "0", "--trials", "4",
                 "--results", str(tmp_path / "r"), "--run-id", "k", "--no-progress", "--reporters", "summary"]) == 0
    run_dir = tmp_path / "r" / "k"
    for name in ("trials.csv", "cells.csv"):  # as if killed before the export
        (run_dir / name).unlink()
    journal = run_dir / "optuna.journal"
    data = journal.read_bytes()  # cut within the last trial's end (state and value), the rest lost with it
    end = data.rindex(b'"values":[') + len(b'"values":[')
    journal.write_bytes(data[:end])
    capsys.readouterr()
    assert main(["repair", "k", "--results", str(tmp_path / "r")]) == 0
    assert f"exported {run_dir / 'trials.csv'}" in capsys.readouterr().out
    trials = pd.read_csv(run_dir / "trials.csv")
    assert (trials["state"] == "complete").sum() == 3  # the fourth trial's end was the cut record
    assert (run_dir / "cells.csv").exists()


# --- exports never wipe results -------------------------------------------------------------

def test_export_refuses_a_storage_that_lacks_exported_trials(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    storage = open_storage(f"journal:{tmp_path / 'full.journal'}")
    cell = PlannedCell(Cell(dataset="d", generator="manual", space="s", algorithm="a", sampler="x", pruner="p",
                            seed=0))
    study = optuna.create_study(storage=storage, study_name=cell.cell.study_name("r"), load_if_exists=True)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    export_run(run_dir, "r", storage, [cell])
    before = (run_dir / "trials.csv").read_bytes()
    assert len(pd.read_csv(run_dir / "trials.csv")) == 3
    empty = open_storage(f"journal:{tmp_path / 'empty.journal'}")
    with pytest.raises(UsageError, match=r"lacks 3 of the 3 trials .* refusing to overwrite"):
        export_run(run_dir, "r", empty, [cell])
    assert (run_dir / "trials.csv").read_bytes() == before
    export_run(run_dir, "r", empty, [cell], accept_loss=True)
    assert pd.read_csv(run_dir / "cells.csv")["state"].tolist() == ["pending"]


def test_report_refuses_a_missing_journal_and_keeps_the_tables(tmp_path: Path, capsys) -> None:
    from harness.cli import main

    run_dir = tmp_path / "results" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": "r1", "config": {"storage": None}, "cells": []}))
    (run_dir / "trials.csv").write_text("cell,trial,state\nc,0,complete\n")
    assert main(["report", "r1", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(run_dir / "optuna.journal") in err and "missing" in err
    assert not (run_dir / "optuna.journal").exists()
    assert (run_dir / "trials.csv").read_text() == "cell,trial,state\nc,0,complete\n"


# --- SQLite's schema race -------------------------------------------------------------------

def _open_at(url: str, start: float, out: multiprocessing.Queue) -> None:
    while time.time() < start:
        time.sleep(0.001)
    try:
        open_storage(url).get_all_studies()
        out.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.put(repr(exc))


def test_processes_creating_one_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'fresh{round_}.db'}"
        out: multiprocessing.Queue = context.Queue()
        start = time.time() + 4.0
        procs = [context.Process(target=_open_at, args=(url, start, out)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(120)
        assert sorted(out.get(timeout=5) for _ in procs) == ["ok"] * 4


def test_the_schema_race_is_retried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []
    real = optuna.storages.RDBStorage

    def flaky(url: str) -> object:
        calls.append(url)
        if len(calls) == 1:
            raise RuntimeError('(sqlite3.IntegrityError) UNIQUE constraint failed: alembic_version.version_num')
        return real(url)

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    open_storage(f"sqlite:///{tmp_path / 'x.db'}")
    assert len(calls) == 2
    monkeypatch.setattr(optuna.storages, "RDBStorage",
                        lambda url: (_ for _ in ()).throw(RuntimeError("password authentication failed")))
    with pytest.raises(UsageError, match="password authentication failed"):
        open_storage("postgresql://u:p@localhost/db")


# --- run folder files -----------------------------------------------------------------------

def test_run_json_is_written_through_unique_temporary_names(tmp_path: Path, monkeypatch) -> None:
    sources = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (sources.append(Path(src).name), real_replace(src, dst)))
    for value in range(3):
        write_json_atomic({"run_id": "x", "config": {"v": value}}, tmp_path / "run.json")
    assert len(set(sources)) == 3 and read_run_json(tmp_path / "run.json")["config"] == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


@pytest.mark.parametrize("text", ["", "{", "[]", '{"run_id": "x"}', "\x00\x01"])
def test_a_corrupt_run_json_is_one_line(tmp_path: Path, text: str) -> None:
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(UsageError, match="run.json is corrupt") as info:
        read_run_json(tmp_path / "run.json")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("run_id", ["digits-0123456789", "nb201-cifar10+digits-abc", "my_run.2", "A=1"])
def test_safe_run_ids_are_accepted(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize("url", ["journal:/tmp/x.journal", "sqlite:////tmp/x.db", "sqlite:///rel.db",
                                 "postgresql://u:p@h/db", "postgresql+psycopg://u@h:5/db", "mysql+pymysql://u@h/d"])
def test_good_storage_urls_pass_the_check(url: str) -> None:
    check_storage_url(url)


def test_a_symlink_lock_left_by_optuna_never_truncates_the_journal(tmp_path: Path) -> None:
    """Optuna's default journal lock is a symbolic link to the journal under the same name;
    opening it as our lock file and clearing it would empty the journal."""
    journal = tmp_path / "optuna.journal"
    fill(journal, n_trials=3)
    size = journal.stat().st_size
    lock = tmp_path / "optuna.journal.lock"
    lock.unlink()
    lock.symlink_to(journal)
    fill(journal, n_trials=1)
    assert journal.stat().st_size > size and not lock.is_symlink()
    assert len(n_trials(journal)) == 4


@pytest.mark.parametrize("scheme", ["journal:", "sqlite:///"])
def test_a_file_storage_in_a_missing_folder_gets_its_folder(tmp_path: Path, scheme: str) -> None:
    """journal and SQLite behave alike: the folder of a new storage file is created."""
    path = tmp_path / "new" / "deeper" / "run.db"
    storage = open_storage(f"{scheme}{path}")
    optuna.create_study(storage=storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert path.exists()


# --- the journal's reader and its flushes to disk ------------------------------------------

def _records(n: int, op: int = 8) -> list[dict]:
    return [{"op_code": op, "worker_id": "w", "trial_id": 0, "user_attr": {"i": i}} for i in range(n)]


@pytest.mark.parametrize("chunk", [1 << 22, 64])  # 64 bytes: every record is longer than a chunk
def test_reader_gives_what_optunas_reader_gives_from_any_record_and_skips_a_partial_last_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    from optuna.storages.journal import JournalFileBackend

    from harness import journal
    from harness.journal import SafeJournalBackend

    monkeypatch.setattr(journal, "_READ_BYTES", chunk)

    path = tmp_path / "optuna.journal"
    writer, reader = SafeJournalBackend(str(path)), SafeJournalBackend(str(path))
    writer.append_logs(_records(7))
    assert list(reader.read_logs(0)) == _records(7)
    assert list(reader.read_logs(7)) == []  # nothing new: one stat
    writer.append_logs(_records(3, op=2))
    assert list(reader.read_logs(7)) == _records(3, op=2)  # continues where it ended
    optunas = JournalFileBackend(str(path), lock_obj=OwnerFileLock(str(path)))
    for start in (0, 4, 9, 10):
        assert list(reader.read_logs(start)) == list(optunas.read_logs(start))
    with path.open("ab") as f:  # another process mid-append
        f.write(b'{"op_code":8,"worker_id":"w","trial_id":0,"user_at')
    assert list(reader.read_logs(10)) == []
    with path.open("ab") as f:
        f.write(b'tr":{"i":99}}\n')
    assert [r["user_attr"]["i"] for r in reader.read_logs(10)] == [99]


def test_a_journal_replaced_under_a_reader_is_read_from_its_start(tmp_path: Path) -> None:
    from harness.journal import SafeJournalBackend

    path = tmp_path / "optuna.journal"
    backend = SafeJournalBackend(str(path))
    backend.append_logs(_records(5))
    assert len(list(backend.read_logs(0))) == 5
    replacement = tmp_path / "new.journal"
    replacement.write_text("".join(json.dumps(r) + "\n" for r in _records(2, op=3)))
    os.replace(replacement, path)  # what `harness repair` does
    with pytest.raises(DataError, match="was replaced"):  # from where it was: not the file it read
        list(backend.read_logs(5))
    assert list(backend.read_logs(0)) == _records(2, op=3)  # from the start: any file will do
    backend.append_logs(_records(1))  # appends go to the new file too
    assert path.read_text().count("\n") == 3


def test_flushes_to_disk_once_per_interval_for_a_burst_and_at_once_after_a_quiet_spell(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import journal

    # an interval no stall of this process (a garbage collection, a busy machine) outlasts between
    # two appends that must fall within it
    monkeypatch.setattr(journal, "FLUSH_SECONDS", 0.5)
    flushed: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(journal.os, "fsync", lambda fd: (flushed.append(fd), real_fsync(fd)))
    path = tmp_path / "optuna.journal"
    backend = journal.SafeJournalBackend(str(path))
    backend.append_logs(_records(20, op=8))  # a running trial's attributes ask for no flush
    assert flushed == []
    state = {"op_code": 6, "worker_id": "w", "trial_id": 0, "state": 1, "values": [0.5]}
    backend.append_logs([state])
    assert len(flushed) == 1  # the first finished trial after a quiet spell: flushed when told
    started = time.monotonic()
    for _ in range(200):  # a burst of table trials
        backend.append_logs([state])
    elapsed = time.monotonic() - started
    assert len(flushed) <= 2 + elapsed / journal.FLUSH_SECONDS
    time.sleep(journal.FLUSH_SECONDS)
    backend.append_logs([state])
    assert not backend._writer.unsynced  # due again: flushed
    backend.append_logs([state])
    assert backend._writer.unsynced  # within the interval: left for later
    count = len(flushed)
    backend.close()  # what is left is flushed when the storage closes (and at exit)
    assert len(flushed) == count + 1 and not backend._writer.unsynced


def test_lock_file_removed_between_appends_is_made_again(tmp_path: Path) -> None:
    from harness.journal import SafeJournalBackend

    path = tmp_path / "optuna.journal"
    backend = SafeJournalBackend(str(path))
    backend.append_logs(_records(1))
    os.unlink(str(path) + ".lock")  # a lock on the removed file would exclude no one
    backend.append_logs(_records(1))
    assert Path(str(path) + ".lock").exists()
    probe = subprocess.run([sys.executable, "-c", (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(path) + '.lock'!r}, os.O_RDWR)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n")],
        check=False)
    assert probe.returncode == 0  # released after the append
    backend.lock.acquire()
    try:
        probe = subprocess.run([sys.executable, "-c", (
            "import fcntl, os, sys\n"
            f"fd = os.open({str(path) + '.lock'!r}, os.O_RDWR)\n"
            "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n")],
            check=False)
        assert probe.returncode == 3  # held, on the file the path names now
    finally:
        backend.lock.release()


def test_replayed_records_share_their_key_strings(tmp_path: Path) -> None:
    """Every process keeps every replayed trial's attributes in memory: two trials' attribute
    dicts hold the same key objects, not a copy each (a third less memory per table trial)."""
    journal = tmp_path / "optuna.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    for value in (0.1, 0.2):
        trial = study.ask()
        trial.set_user_attr("record", {"val_accuracy": value, "device": "cpu"})
        study.tell(trial, value)
    first, second = optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}")).get_trials(
        deepcopy=False)
    keys = [[k for k in t.user_attrs["record"]] for t in (first, second)]
    assert keys[0] == keys[1] == ["val_accuracy", "device"]
    assert all(a is b for a, b in zip(*keys))


def test_records_with_nan_infinity_and_huge_integers_replay_as_written(tmp_path: Path) -> None:
    """Optuna writes journal records with Python's ``json`` (``NaN``, ``Infinity`` and integers of
    any size allowed); the fast decoder refuses those, and such a record must still replay whole."""
    journal = tmp_path / "optuna.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    trial = study.ask()
    written = {"test_accuracy": float("nan"), "bound": float("inf"), "seed": 2**70, "ok": 1}
    trial.set_user_attr("record", written)
    study.tell(trial, 0.5)
    assert b"NaN" in journal.read_bytes()
    replayed = optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}")).trials[0]
    record = replayed.user_attrs["record"]
    assert math.isnan(record["test_accuracy"]) and record["bound"] == math.inf
    assert record["seed"] == 2**70 and record["ok"] == 1 and replayed.value == 0.5


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_journal_removed_or_replaced_under_a_process_stops_it_with_one_line(tmp_path: Path, how: str) -> None:
    """The records a process replayed no longer match the file: it must not go on appending."""
    journal = tmp_path / "optuna.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{journal}"))
    study.tell(study.ask(), 0.5)
    if how == "removed":
        journal.unlink()
    else:  # another run's journal in its place (a run folder deleted and made again)
        other = tmp_path / "other.journal"
        optuna.create_study(study_name="t", storage=open_storage(f"journal:{other}")).tell(
            optuna.load_study(study_name="t", storage=open_storage(f"journal:{other}")).ask(), 0.1)
        os.replace(other, journal)
    with pytest.raises(DataError, match=f"journal {journal} was {how}"):
        study.ask()
    with pytest.raises(DataError, match=f"was {how}"):
        study.get_trials()


def test_a_storage_closed_and_used_again_reopens_the_same_journal(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    storage = open_storage(f"journal:{journal}")
    study = optuna.create_study(study_name="s", storage=storage)
    study.tell(study.ask(), 0.5)
    storage._backend.close()  # type: ignore[attr-defined]  # what a worker does between runs
    study.tell(study.ask(), 0.25)
    assert [t.value for t in optuna.load_study(study_name="s", storage=open_storage(f"journal:{journal}")).trials] \
        == [0.5, 0.25]


@pytest.mark.slow
def test_a_run_whose_journal_is_deleted_mid_run_ends_with_one_line(tmp_path: Path) -> None:
    """It used to ask for trials forever, each one "finished by another worker"."""
    from harness_plugins.datasets._nb201_synthetic import write_synthetic_table

    table = write_synthetic_table(tmp_path / "nb201.csv")
    proc = subprocess.Popen([sys.executable, "-m", "harness", "bench", "--datasets", "nb201-cifar100", "--table",
                             str(table), "--spaces", "nb201", "--algorithms", "random", "--samplers", "random",
                             "--pruners", "none", "--seeds", "0", "--trials", "200000", "--results",
                             str(tmp_path / "results"), "--run-id", "gone", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "results" / "gone" / "optuna.journal"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and (not journal.exists() or journal.stat().st_size < 50_000):
            time.sleep(0.1)
        journal.unlink()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 2, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("harness: error:")]
    assert len(lines) == 1 and f"journal {journal} was removed" in lines[0], err[-2000:]
    assert "finished by another worker" not in err
