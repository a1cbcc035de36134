"""The run's journal file: a lock that survives ``kill -9``, integrity checks, and a safe repair.

Why not Optuna's own file locks: ``JournalFileOpenLock`` and ``JournalFileSymlinkLock`` mark the
lock by the *existence* of a file, so a process killed while holding it leaves the file behind and
the next process waits out a 30 s grace period, then breaks the lock without knowing whether its
owner is alive. :class:`OwnerFileLock` uses ``flock(2)`` on the same ``<journal>.lock`` path
instead: the kernel releases it when its holder dies, so a dead owner never blocks anyone. The
holder writes its identity into the file and blanks it on release, so the next holder knows when
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
import math
import os
import re
import shutil
import socket
import sys
import time
import uuid
import weakref
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import BaseJournalFileLock

from harness.errors import DataError

__all__ = ["JournalCheck", "OwnerFileLock", "SafeJournalBackend", "check_journal", "repair_journal"]

log = logging.getLogger(__name__)

#: Operations whose loss would renumber the studies or trials that follow (ids are assigned in
#: replay order): ``create_study``, ``delete_study``, ``create_trial``, ``discard_trials`` in
#: Optuna's ``JournalOperation``. Any other record only sets a value of an existing trial or study.
_STRUCTURAL_OPS = frozenset({0, 1, 4, 10})
#: Operations whose record asks for a flush to disk (``fsync``): ``create_study``, ``delete_study``,
#: ``set_study_user_attr``, ``set_study_system_attr``, ``set_trial_state_values`` and
#: ``discard_trials`` (see :meth:`SafeJournalBackend.append_logs`).
_DURABLE_OPS = frozenset({0, 1, 2, 3, 6, 10})
#: How much of the journal one read asks for at most (a longer record is read whole all the same).
_READ_BYTES = 1 << 22
#: A process flushes its appends to disk at most this often (see :meth:`SafeJournalBackend.append_logs`).
FLUSH_SECONDS = 0.05
_OP_CODE = re.compile(rb'"op_code"\s*:\s*(\d+)')


def _interned_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {sys.intern(key): value for key, value in pairs}


#: Decodes a journal record with its keys interned: the fallback of :func:`_decode`.
_DECODER = json.JSONDecoder(object_pairs_hook=_interned_keys)
_TRIAL_ID = re.compile(rb'"trial_id"\s*:\s*(\d+)')


def _decode(line: bytes) -> Any:
    """One journal line as Optuna wrote it, decoded.

    Why orjson: a process replays every record of the journal (every trial of every cell, and
    ``harness report`` all of them at once), and Python's ``json`` spends most of that replay
    decoding: orjson takes 29 % off a 40,000-trial replay. Its key cache also makes equal keys
    one string object: Optuna's journal storage keeps every trial's attributes in memory, in
    every process, as decoded, and each record would otherwise hold its own copy of the same
    few key strings ("user_attr", "val_accuracy", each architecture's edges...): a third less
    memory per replayed table trial (about 6 KB -> 4).

    Optuna writes records with Python's ``json``, which also writes ``NaN``, ``Infinity`` and
    integers wider than 64 bits; orjson refuses those, and such a record is decoded by ``json``
    with its keys interned as orjson's would be."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return _DECODER.decode(line.decode("utf-8"))


#: The lock file holds its holder's identity padded to this many bytes, or as many blanks when free.
_OWNER_BYTES = 256

#: How long a process asking for a held journal lock keeps trying without sleeping, in seconds.
SPIN_SECONDS = 200e-6


def lock_exclusive(fd: int, spin: float | None = None) -> None:
    """``flock(fd, LOCK_EX)``, tried without blocking for up to ``spin`` seconds (default
    :data:`SPIN_SECONDS`) before it blocks.

    Why: a journal append holds the lock for a few microseconds, and a table trial appends four
    records. A process that blocks in ``flock`` sleeps, and the holder, woken neither by it nor
    slowed, releases and takes the lock again for its next record before the sleeper is scheduled:
    the sleeper wakes to a held lock, sleeps again, and the two processes' appends end up in single
    file, with a sleep and a wake-up for most of them. Measured on 2 cores, two processes each
    appending 40,000 records took 1.73 s where one process took 1.62 s for all 80,000 (0.94x);
    with a 200-microsecond spin, 1.07 s (1.57x); on 40 cells of random search on a table (1,000
    trials each, pure bookkeeping), ``--jobs 2`` went from 1.43x to 1.50x. A holder that keeps
    the lock longer (a slow disk, a stopped process) costs a waiter ``spin`` of CPU time, then it
    sleeps as before."""
    deadline = time.perf_counter() + (SPIN_SECONDS if spin is None else spin)
    while True:  # one try at least, however short the spin
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.perf_counter() >= deadline:
                break
    fcntl.flock(fd, fcntl.LOCK_EX)


_OWNERS: dict[int, bytes] = {}


def _owner() -> bytes:
    """This process's identity as the lock file holds it (made once per process)."""
    pid = os.getpid()
    if pid not in _OWNERS:
        _OWNERS.clear()
        _OWNERS[pid] = f"{socket.gethostname()} pid {pid} {uuid.uuid4().hex[:8]}".encode()[:_OWNER_BYTES]
    return _OWNERS[pid].ljust(_OWNER_BYTES)


class OwnerFileLock(BaseJournalFileLock):
    """An exclusive ``flock`` on ``<journal>.lock`` (see the module docstring).

    ``recovered`` holds the identity of a previous holder that died holding the lock, if any was
    seen; the journal backend then repairs the torn tail that holder may have left.
    """

    def __init__(self, journal_path: str) -> None:
        self.path = journal_path + ".lock"
        #: the lock file, opened once and kept (a table trial takes and releases the lock four or five times)
        self._box = _Descriptor()
        self._held = False
        self.recovered: str | None = None
        weakref.finalize(self, self._box.close)

    @property
    def _file(self) -> int | None:
        return self._box.fd

    @_file.setter
    def _file(self, fd: int | None) -> None:
        self._box.fd, self._box.identity = fd, None

    def _open(self) -> int:
        """Open the lock file, never through a symbolic link: Optuna's ``JournalFileSymlinkLock``
        (the default of a plain ``JournalFileBackend``) marks its lock with a link *to the journal*
        under this same name, and writing through it would overwrite the journal."""
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                log.warning("journal lock %s is a link left by Optuna's own file lock; removed", self.path)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                continue
            if os.fstat(fd).st_size > 4096:
                os.close(fd)
                raise RuntimeError(f"{self.path} is not a journal lock file (it is too large); move it away")
            return fd
        raise RuntimeError(f"cannot open the journal lock {self.path}")

    def _still_the_lock_file(self, fd: int) -> bool:
        """Whether ``fd`` is the file the lock's path names now (it was not removed or replaced
        since it was opened: a lock on a file no other process opens excludes no one)."""
        try:
            now = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if self._box.identity is None:
            mine = os.fstat(fd)
            self._box.identity = (mine.st_dev, mine.st_ino)
        return (now.st_dev, now.st_ino) == self._box.identity

    def acquire(self) -> bool:
        while True:
            if not self._box.usable():
                self._file = self._open()
            fd: int = self._file  # type: ignore[assignment]  # usable() or just opened
            lock_exclusive(fd)
            if self._still_the_lock_file(fd):
                break
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._file = None
            os.close(fd)
        try:
            previous = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            if previous:
                self.recovered = previous
                log.warning("journal lock %s was still held by %s, which is gone (killed?); lock recovered",
                            self.path, previous)
            os.pwrite(fd, _owner(), 0)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise
        self._held = True
        return True

    def release(self) -> None:
        if not self._held or self._file is None:
            raise RuntimeError("the journal lock is not held")
        self._held = False
        try:  # blanks, not a truncation: the file keeps its size, a cheaper write than a new size
            os.pwrite(self._file, b" " * _OWNER_BYTES, 0)
        finally:
            fcntl.flock(self._file, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (the lock must not be held)."""
        self._box.close()


class _Descriptor:
    """A file descriptor kept open by its owner, closed by :meth:`close` or when the owner is
    collected (``weakref.finalize`` on the owner calls it: a plain ``int`` is never closed)."""

    def __init__(self) -> None:
        self.fd: int | None = None
        #: (device, inode) of the file ``fd`` is open on
        self.identity: tuple[int, int] | None = None
        self.pid = os.getpid()
        #: written records of :data:`_DURABLE_OPS` not flushed to disk yet, and the last flush
        self.unsynced = False
        self.synced_at = -math.inf

    def sync(self) -> None:
        """Flush every write of the file so far to disk (``fsync``)."""
        if self.fd is not None:
            os.fsync(self.fd)
        self.unsynced, self.synced_at = False, time.monotonic()

    def sync_if_due(self) -> None:
        if self.unsynced and time.monotonic() - self.synced_at >= FLUSH_SECONDS:
            self.sync()

    def usable(self) -> bool:
        """Whether ``fd`` is open, in this process. A child forked with the owner inherits the
        descriptor, and with it the parent's ``flock``: it must open its own."""
        if self.fd is not None and self.pid != os.getpid():
            self.fd, self.identity, self.pid = None, None, os.getpid()  # the parent's to close
        return self.fd is not None

    def close(self) -> None:
        """Flush what is not on disk yet, and close (at exit too: ``weakref.finalize`` runs then)."""
        fd, self.fd, self.identity = self.fd, None, None
        if fd is not None and self.pid == os.getpid():
            try:
                if self.unsynced:
                    os.fsync(fd)
            except OSError:
                log.warning("could not flush a journal to disk when closing it", exc_info=True)
            finally:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.unsynced = False


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
        #: (records read, byte offset after them) at the end of the last read
        self._last_read = (0, 0)
        #: (device, inode) of the file this process's storage replayed records from, once it has
        self._replayed_from: tuple[int, int] | None = None
        #: the journal opened to read, and to append: each opened once and kept while the path
        #: names the same file (Optuna's backend opens the file for every read and every append)
        self._reader, self._writer = _Descriptor(), _Descriptor()
        weakref.finalize(self, self._reader.close)
        weakref.finalize(self, self._writer.close)

    def _stat(self) -> os.stat_result:
        """The journal's ``stat``; a :class:`DataError` when its path no longer names the file
        this process replayed (unless it reads again from the start): removed, moved aside, or
        replaced (``harness repair`` writes a new file; a run folder deleted and made again).
        The records this process holds in memory would not match the file's, and what it
        appended would land in a file whose trial numbers mean other trials: it must stop, not
        go on (it used to ask for trials forever, every one of them "finished by another
        worker")."""
        try:
            now = os.stat(self._file_path)
        except FileNotFoundError:
            raise DataError(f"journal {self.path} was removed while this process was using it (the run folder moved "
                            f"or deleted?); nothing more can be recorded: put it back, or start again") from None
        if self._replayed_from is not None and (now.st_dev, now.st_ino) != self._replayed_from:
            raise DataError(f"journal {self.path} was replaced by another file while this process was using it (a "
                            f"run folder deleted and made again, or `harness repair` while the run went on); "
                            f"stop every process of the run and rerun the command")
        return now

    def _descriptor(self, box: _Descriptor, flags: int, now: os.stat_result) -> int:
        """``box``'s descriptor, (re)opened when it was closed, or before any record was
        replayed, when the journal's path names another file than the one it is open on
        (``now`` is the path's ``stat``, from :meth:`_stat`)."""
        if box.usable() and box.identity == (now.st_dev, now.st_ino):
            return box.fd  # type: ignore[return-value]
        box.close()
        fd = os.open(self._file_path, flags | os.O_CLOEXEC)
        opened = os.fstat(fd)
        box.fd, box.identity = fd, (opened.st_dev, opened.st_ino)
        if box is self._reader:
            self._last_read = (0, 0)  # offsets into another file mean nothing here
        return fd

    def close(self) -> None:
        """Close the journal's and the lock's files (they are reopened if the backend is used again)."""
        self._reader.close()
        self._writer.close()
        self.lock.close()

    def verify_tail(self) -> None:
        """Under the lock (no append in flight), refuse a journal whose last line is partial, unless
        the lock's previous holder died holding it: then the partial line is that holder's
        unacknowledged write, which is cut off (and kept in a backup)."""
        self.lock.acquire()
        try:
            self._check_tail_locked()
        finally:
            self.lock.release()

    def _check_tail_locked(self) -> os.stat_result:
        """Returns the journal's ``stat`` (it is a whole number of records, now)."""
        recovered, self.lock.recovered = self.lock.recovered, None
        now = self._stat()
        size = now.st_size
        if size == 0:
            return now
        reader = self._descriptor(self._reader, os.O_RDONLY, now)
        if os.pread(reader, 1, size - 1) == b"\n":
            return now
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if recovered is not None:
            backup = self.path.with_name(f"{self.path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
            backup.write_bytes(data[keep:])
            os.truncate(self.path, keep)
            log.warning("journal %s: cut the %d-byte partial record left by %s (kept in %s)",
                        self.path, size - keep, recovered, backup)
            return os.stat(self._file_path)
        line = data.count(b"\n") + 1
        raise DataError(f"journal {self.path} line {line}: incomplete last record ({size - keep} bytes, no "
                        f"newline: the file was cut short); {_repair_hint(self.path)}")

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append under the lock; flush to disk (``fsync``) after releasing it, when due.

        Every append is whole and visible to every process when this returns, and survives the
        death of this process (``kill -9`` included): the kernel holds it. What ``fsync`` adds is
        survival of an OS crash or power cut, and Optuna's backend pays for it on every record,
        holding the lock: on a table, where a trial is a few records and a lookup, one process
        spent a fifth of its time there and a second process mostly waited for the first's disk
        (``--jobs 2`` ran no faster than one process). Here:

        - the lock only keeps appends whole and in order; the flush follows its release;
        - only :data:`_DURABLE_OPS` ask for a flush (a study created or deleted, a study attribute,
          a trial's state and values), not the records of a trial that runs (its creation,
          attributes, parameters, intermediate values): an ``fsync`` flushes every earlier write
          of the file, so they reach the disk with their trial's end at the latest;
        - a flush is at most every :data:`FLUSH_SECONDS`: the first finished trial after a quiet
          spell (any trial that trains: minutes apart) is flushed when it is told, and of a burst
          of table trials, one per interval; what is left is flushed by the next append or read
          after the interval, and when the storage is closed or the process exits.

        So what a power cut can take is the trials still running then (retried anyway) and the
        table trials finished in the last :data:`FLUSH_SECONDS` before it, which the next run,
        counting the budget in the journal, runs again."""
        data = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in logs).encode("utf-8")
        self.lock.acquire()
        try:
            before = self._check_tail_locked()
            writer = self._descriptor(self._writer, os.O_WRONLY | os.O_APPEND, before)
            written = 0
            try:
                while written < len(data):  # a regular file takes it whole unless the disk is full
                    written += os.write(writer, data[written:])
            except BaseException:
                # a full disk (or a signal) mid-record: undo the part written, so the journal stays
                # a whole number of records and the rerun, once there is room, simply goes on. The
                # file's size says what was written (a signal may interrupt after a write landed
                # and before ``written`` counted it); an append that landed whole is kept
                if before.st_size < os.fstat(writer).st_size < before.st_size + len(data):
                    os.ftruncate(writer, before.st_size)
                raise
        finally:
            self.lock.release()
        if any(entry.get("op_code") in _DURABLE_OPS for entry in logs):
            self._writer.unsynced = True
            self._writer.sync_if_due()

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        """The records from number ``log_number_from`` on (Optuna's storage asks after every
        operation, for what was appended since its last read).

        Why not Optuna's reader: it opens and reads the file on every call. Here the end of the
        last read is remembered, so a call with nothing new is one ``stat`` (most calls of a
        single process), and a call that follows the last read starts where it ended. Records
        end with a newline; a last line without one is a record being appended (or a torn tail,
        which the next append refuses), not read yet. A line that is not a JSON record is a
        one-line :class:`~harness.errors.DataError` naming the file and the line."""
        self._writer.sync_if_due()  # a worker that only polls now still flushes its last trials
        if log_number_from == 0:  # a replay from the start: whatever file the path names now
            self._replayed_from = None
        now = self._stat()
        reader = self._descriptor(self._reader, os.O_RDONLY, now)
        number, offset = self._last_read if self._last_read[0] <= log_number_from else (0, 0)
        if number == log_number_from and now.st_size <= offset:
            return
        want = _READ_BYTES
        while offset < now.st_size:  # one pread per chunk: most calls read one record or two
            chunk = os.pread(reader, min(now.st_size - offset, want), offset)
            end = chunk.rfind(b"\n") + 1
            if end == 0:  # no whole record in the chunk
                if len(chunk) < want:
                    break  # the file ends in a record being appended
                want *= 2  # one record longer than the chunk
                continue
            for line in chunk[:end - 1].split(b"\n"):
                number, offset = number + 1, offset + len(line) + 1
                if number <= log_number_from:
                    continue
                try:
                    record = _decode(line)
                except ValueError:  # UnicodeDecodeError included
                    check = check_journal(self.path)
                    where = check.first_problem() if check.problems else f"journal {self.path} line {number}"
                    raise DataError(f"{where}; {_repair_hint(self.path)}") from None
                self._last_read = (number, offset)
                self._replayed_from = self._reader.identity
                yield record
        if number <= log_number_from:  # skipped up to the start: remember where it is
            self._last_read = (number, offset)


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


def looks_like_journal(path: str | Path, lines: int = 100) -> bool:
    """Whether one of the first complete ``lines`` of ``path`` is an Optuna journal record (a JSON
    object with an ``op_code``): ``harness repair`` refuses any other file rather than "repair" a
    mistyped path (a data table, say) down to nothing."""
    with open(path, "rb") as stream:
        head = stream.read(1 << 20)
    for line in head.split(b"\n")[:-1][:lines]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "op_code" in record:
            return True
    return False


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
