"""The run's journal file: a lock that survives ``kill -9``, integrity checks, and a safe repair.

Why not Optuna's own file locks: ``JournalFileOpenLock`` and ``JournalFileSymlinkLock`` mark the
lock by the *existence* of a file, so a process killed while holding it leaves the file behind and
the next process waits out a 30 s grace period, then breaks the lock without knowing whether its
owner is alive. :class:`OwnerFileLock` uses ``flock(2)`` on the same ``<journal>.lock`` path
instead: the kernel releases it when its holder dies, so a dead owner never blocks anyone. The
holder writes its identity into the file and clears it on release, so the next holder knows when
the previous one died holding the lock, and says so in one line.

Why integrity checks: a journal is a JSON-lines file that Optuna replays from the start. A tail
torn mid-line (disk full, an interrupted copy) is skipped silently by Optuna's reader, and the next
append glues a record onto it, after which every read fails with a ``JSONDecodeError``. Here a
torn or corrupt line is a one-line :class:`~harness.errors.DataError` naming the file and the line,
appends never land on a partial line, and :func:`repair_journal` keeps every complete record that
can be kept without changing what the others mean, backs up the original, and says what it dropped.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import BaseJournalFileLock

from harness.errors import DataError

__all__ = ["JournalCheck", "OwnerFileLock", "SafeJournalBackend", "check_journal", "repair_journal"]

log = logging.getLogger(__name__)

#: Operations whose loss would renumber the studies or trials that follow (ids are assigned in
#: replay order): ``create_study``, ``delete_study``, ``create_trial``, ``discard_trials`` in
#: Optuna's ``JournalOperation``. Any other record only sets a value of an existing trial or study.
_STRUCTURAL_OPS = frozenset({0, 1, 4, 10})
_OP_CODE = re.compile(rb'"op_code"\s*:\s*(\d+)')
_TRIAL_ID = re.compile(rb'"trial_id"\s*:\s*(\d+)')


def _owner() -> str:
    return f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"


class OwnerFileLock(BaseJournalFileLock):
    """An exclusive ``flock`` on ``<journal>.lock`` (see the module docstring).

    ``recovered`` holds the identity of a previous holder that died holding the lock, if any was
    seen; the journal backend then repairs the torn tail that holder may have left.
    """

    def __init__(self, journal_path: str) -> None:
        self.path = journal_path + ".lock"
        self._fd: int | None = None
        self.recovered: str | None = None

    def _open(self) -> int:
        """Open the lock file, never through a symbolic link: Optuna's ``JournalFileSymlinkLock``
        (the default of a plain ``JournalFileBackend``) marks its lock with a link *to the journal*
        under this same name, and writing through it would overwrite the journal."""
        for _ in range(3):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                log.warning("journal lock %s is a link left by Optuna's own file lock; removed", self.path)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        raise RuntimeError(f"cannot open the journal lock {self.path}")

    def acquire(self) -> bool:
        fd = self._open()
        try:
            if os.fstat(fd).st_size > 4096:
                raise RuntimeError(f"{self.path} is not a journal lock file (it is too large); move it away")
            fcntl.flock(fd, fcntl.LOCK_EX)
            previous = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            if previous:
                self.recovered = previous
                log.warning("journal lock %s was still held by %s, which is gone (killed?); lock recovered",
                            self.path, previous)
            os.ftruncate(fd, 0)
            os.pwrite(fd, _owner().encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            raise RuntimeError("the journal lock is not held")
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


@dataclass
class JournalCheck:
    """What a scan of a journal found. ``problems``: ``(line number, what)`` of every line that is
    not a complete JSON record; ``torn_tail``: the last line has no newline."""

    path: Path
    records: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    torn_tail: bool = False

    def first_problem(self) -> str:
        line, what = self.problems[0]
        more = f" (and {len(self.problems) - 1} more bad line(s))" if len(self.problems) > 1 else ""
        return f"journal {self.path} line {line}: {what}{more}"


def check_journal(path: str | Path) -> JournalCheck:
    """Scan every line of a journal file (reads the whole file: call it when something is wrong,
    or from ``harness repair``)."""
    path = Path(path)
    check = JournalCheck(path)
    data = path.read_bytes() if path.exists() else b""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        check.torn_tail = True
    for number, line in enumerate(lines, start=1):
        if check.torn_tail and number == len(lines):
            what = f"incomplete last record ({len(line)} bytes, no newline: the file was cut short)"
            check.problems.append((number, what))
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "op_code" not in record:
                raise ValueError("not a journal record")
        except ValueError:
            check.problems.append((number, "not a complete JSON journal record"))
            continue
        check.records += 1
    return check


def _repair_hint(path: Path) -> str:
    return f"run `harness repair {path}` (keeps every complete record, backs up the original)"


class SafeJournalBackend(JournalFileBackend):
    """Optuna's journal file backend with one-line errors for torn or corrupt lines and appends
    that never land on a partial line."""

    def __init__(self, file_path: str) -> None:
        self.lock = OwnerFileLock(file_path)
        super().__init__(file_path, lock_obj=self.lock)
        self.path = Path(file_path)

    def verify_tail(self) -> None:
        """Under the lock (no append in flight), refuse a journal whose last line is partial, unless
        the lock's previous holder died holding it: then the partial line is that holder's
        unacknowledged write, which is cut off (and kept in a backup)."""
        self.lock.acquire()
        try:
            self._check_tail_locked()
        finally:
            self.lock.release()

    def _check_tail_locked(self) -> None:
        recovered, self.lock.recovered = self.lock.recovered, None
        size = self.path.stat().st_size
        if size == 0:
            return
        with self.path.open("rb") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
        keep = data.rfind(b"\n") + 1
        if recovered is not None:
            backup = self.path.with_name(f"{self.path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
            backup.write_bytes(data[keep:])
            os.truncate(self.path, keep)
            log.warning("journal %s: cut the %d-byte partial record left by %s (kept in %s)",
                        self.path, size - keep, recovered, backup)
            return
        line = data.count(b"\n") + 1
        raise DataError(f"journal {self.path} line {line}: incomplete last record ({size - keep} bytes, no "
                        f"newline: the file was cut short); {_repair_hint(self.path)}")

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.lock.acquire()
        try:
            self._check_tail_locked()
            text = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in logs)
            with open(self._file_path, "ab") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        finally:
            self.lock.release()

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        try:
            yield from super().read_logs(log_number_from)
        except ValueError:  # json.JSONDecodeError included: a corrupt line before the last one
            check = check_journal(self.path)
            where = check.first_problem() if check.problems else f"journal {self.path}: unreadable record"
            raise DataError(f"{where}; {_repair_hint(self.path)}") from None


@dataclass
class RepairReport:
    path: Path
    backup: Path | None
    kept: int
    dropped: list[tuple[int, str]]
    trial_ids: list[int]

    def summary(self) -> str:
        if not self.dropped:
            return f"journal {self.path}: {self.kept} records, nothing to repair"
        lines = ", ".join(str(n) for n, _ in self.dropped[:10]) + (" ..." if len(self.dropped) > 10 else "")
        return (f"journal {self.path}: kept {self.kept} records, dropped {len(self.dropped)} (line(s) {lines}); "
                f"original in {self.backup}")


def repair_journal(path: str | Path) -> RepairReport:
    """Rewrite a journal without its bad lines, under its lock, after copying the original aside.

    Every complete record is kept, except those after a bad line that may have created a study or
    a trial (trial ids are assigned in replay order, so records after a lost ``create_trial`` would
    attach to the wrong trials): from such a line on, the rest is dropped and listed. The caller
    names the trials the dropped records touch (``trial_ids``).
    """
    path = Path(path)
    lock = OwnerFileLock(str(path))
    lock.acquire()
    try:
        data = path.read_bytes()
        lines = data.split(b"\n")
        torn = lines[-1] != b""
        if not torn:
            lines.pop()
        kept: list[bytes] = []
        dropped: list[tuple[int, str]] = []
        trial_ids: set[int] = set()
        cut_from: int | None = None
        for number, line in enumerate(lines, start=1):
            if cut_from is not None:
                dropped.append((number, "after a lost structural record"))
                trial_ids.update(int(m) for m in _TRIAL_ID.findall(line))
                continue
            ok = not (torn and number == len(lines))
            if ok:
                try:
                    ok = isinstance(json.loads(line), dict)
                except ValueError:
                    ok = False
            if ok:
                kept.append(line)
                continue
            trial_ids.update(int(m) for m in _TRIAL_ID.findall(line))
            op = _OP_CODE.search(line)
            dropped.append((number, "bad record"))
            if op is None or int(op.group(1)) in _STRUCTURAL_OPS:
                cut_from = number
        backup = None
        if dropped:
            backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}")
            shutil.copy2(path, backup)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            with tmp.open("wb") as f:
                f.write(b"".join(line + b"\n" for line in kept))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        return RepairReport(path, backup, len(kept), dropped, sorted(trial_ids))
    finally:
        try:
            lock.release()
        except OSError as exc:  # pragma: no cover - the lock file vanished
            if exc.errno != errno.ENOENT:
                raise
