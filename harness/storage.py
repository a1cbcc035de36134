"""Where a run's Optuna studies live: an embedded journal file by default, or any RDB URL.

Why the journal file by default: measured with Optuna 5.0 it costs ~6 ms per trial against ~62 ms
for SQLite, and is safe for several processes on one machine (file lock). For many machines give
``--storage postgresql://user:pw@host/db``: every machine runs the same command and Optuna's RDB
storage shares the cells. The journal's lock, integrity checks and repair are in
:mod:`harness.journal`.

Opening never creates what a reader expects to exist: ``harness report`` opens with
``create=False`` and a missing journal or SQLite file is a one-line error, never an empty storage
whose export would wipe the run's tables.

A trial whose worker was killed stays RUNNING in the storage until a worker finds it dead: on RDB
storages by Optuna's heartbeat (the harness records beats from a background thread while a trial
runs, on any machine), on the journal file by the worker's process identity (see
:mod:`harness.workers`). It is then failed and retried, and uses no budget.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UsageError

if TYPE_CHECKING:
    import optuna

__all__ = ["check_storage_url", "close_storage", "open_storage", "storage_path", "storage_url", "study_names"]

log = logging.getLogger(__name__)

#: ``dialect[+driver]://...`` as SQLAlchemy parses it.
_RDB_URL = re.compile(r"^[a-z][a-z0-9]*(\+[a-z0-9_]+)?://", re.IGNORECASE)
#: Dialects whose RDB storage is tested here; others are passed to SQLAlchemy as given.
_KNOWN_DIALECTS = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql", "cockroachdb")

#: Two processes creating a fresh RDB storage at once race on Optuna's schema set-up (both insert
#: the ``alembic_version`` row; one fails with a unique-constraint error). The loser retries: by
#: then the winner's schema is there.
CREATE_RETRIES = 5


def storage_url(url: str | None, run_dir: Path) -> str:
    """The storage URL a run uses: ``url`` as given, or the run folder's journal file."""
    return url or f"journal:{(run_dir / 'optuna.journal').resolve()}"


def storage_path(url: str) -> Path | None:
    """The file behind a ``journal:`` or ``sqlite:///`` URL, or ``None`` for a server."""
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:"))
    if url.startswith("sqlite:///"):
        rest = url.removeprefix("sqlite:///").partition("?")[0]
        return Path(rest) if rest and rest != ":memory:" else None
    return None


def check_storage_url(url: str) -> None:
    """Refuse, in one line, a ``--storage`` that cannot work, before anything is written: the
    syntax, and for files whether their folder exists or can be created."""
    if url.startswith("journal:"):
        path_text = url.removeprefix("journal:")
        if not path_text or path_text.endswith("/"):
            raise UsageError(f"--storage {url!r}: expected journal:PATH to a file")
    elif "://" not in url or not _RDB_URL.match(url):
        raise UsageError(f"--storage {url!r}: expected journal:PATH, sqlite:///PATH or postgresql://...")
    else:
        dialect = url.split("://", 1)[0].split("+", 1)[0].lower()
        if dialect not in _KNOWN_DIALECTS:
            raise UsageError(f"--storage {url!r}: unknown database {dialect!r}; expected journal:PATH, "
                             f"sqlite:///PATH or postgresql://user:pw@host/db")
        if dialect == "sqlite" and storage_path(url) is None and ":memory:" not in url:
            raise UsageError(f"--storage {url!r}: expected sqlite:///PATH to a file")
    path = storage_path(url)
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--storage {url!r}: {path} is a folder, not a file")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--storage {url!r}: {parent} is not a folder")


def open_storage(url: str, heartbeat: int | None = None, create: bool = True) -> optuna.storages.BaseStorage:
    """Open ``journal:PATH``, ``sqlite:///PATH``, ``postgresql://...`` (or any SQLAlchemy URL).

    ``heartbeat`` (seconds) turns on Optuna's heartbeat on RDB storages: trials with no beat for
    three intervals are stale (failed and retried). Readers (``harness report``) pass ``None``.
    With ``create=False`` a missing journal or SQLite file is a :class:`UsageError`."""
    import optuna

    check_storage_url(url)
    path = storage_path(url)
    if not create and path is not None and not path.exists():
        raise UsageError(f"the run's storage {path} does not exist (moved or deleted?); nothing to report")
    if url.startswith("journal:"):
        assert path is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--storage {url!r}: cannot create {path.parent}: {exc.strerror}") from None
        from harness.journal import SafeJournalBackend

        try:
            backend = SafeJournalBackend(str(path))
            backend.verify_tail()
        except OSError as exc:
            raise UsageError(f"--storage {url!r}: cannot open {path}: {exc.strerror}") from None
        return optuna.storages.JournalStorage(backend)
    if path is not None and create:  # a SQLite file's folder is created as a journal's is
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--storage {url!r}: cannot create {path.parent}: {exc.strerror}") from None
    for attempt in range(CREATE_RETRIES):
        try:
            if heartbeat is None:
                return optuna.storages.RDBStorage(url)
            return optuna.storages.RDBStorage(url, heartbeat_interval=int(heartbeat), grace_period=3 * int(heartbeat))
        except Exception as exc:  # driver missing, server down, bad credentials: the user can fix it
            text = str(exc)
            if _schema_race(text) and attempt + 1 < CREATE_RETRIES:
                log.info("storage %s: another process is creating its schema; retrying", url)
                time.sleep(0.2 * (attempt + 1))
                continue
            first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise UsageError(f"--storage {url!r}: cannot open: {first_line}") from exc
    raise AssertionError("unreachable")


def _schema_race(message: str) -> bool:
    """Whether an error opening an RDB storage is the schema-creation race (see CREATE_RETRIES)."""
    lowered = message.lower()
    return ("alembic_version" in lowered or "already exists" in lowered
            or ("unique" in lowered and "constraint" in lowered) or "duplicate key" in lowered
            or "database is locked" in lowered)


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Release database connections (RDB storages); a no-op for files."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def study_names(storage: optuna.storages.BaseStorage) -> set[str]:
    """The names of the studies the storage holds.

    Why not ``optuna.get_all_study_summaries``: a summary counts each study's trials and finds its
    first start, which copies every trial of every study (on a journal, a second per 100,000
    trials); the storage's ``get_all_studies`` reads the studies alone."""
    return {study.study_name for study in storage.get_all_studies()}
