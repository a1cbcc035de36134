"""Where a run's Optuna studies live: an embedded journal file by default, or any RDB URL.

Why the journal file by default: measured with Optuna 5.0 it costs ~6 ms per trial against ~62 ms
for SQLite, and is safe for several processes on one machine (file lock). For many machines give
``--storage postgresql://user:pw@host/db``: every machine runs the same command and Optuna's RDB
storage shares the cells.

A trial whose worker was killed stays RUNNING in the storage until a worker finds it dead: on RDB
storages by Optuna's heartbeat (the harness records beats from a background thread while a trial
runs, on any machine), on the journal file by the worker's process identity (see
:mod:`harness.workers`). It is then failed and retried, and uses no budget.
"""
from __future__ import annotations

from pathlib import Path

import optuna

from harness.errors import UsageError

__all__ = ["close_storage", "open_storage", "storage_url"]


def storage_url(url: str | None, run_dir: Path) -> str:
    """The storage URL a run uses: ``url`` as given, or the run folder's journal file."""
    return url or f"journal:{(run_dir / 'optuna.journal').resolve()}"


def open_storage(url: str, heartbeat: int | None = None) -> optuna.storages.BaseStorage:
    """Open ``journal:PATH``, ``sqlite:///PATH``, ``postgresql://...`` (or any SQLAlchemy URL).

    ``heartbeat`` (seconds) turns on Optuna's heartbeat on RDB storages: trials with no beat for
    three intervals are stale (failed and retried). Readers (``harness report``) pass ``None``."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--storage {url!r}: cannot create {path.parent}: {exc.strerror}") from None
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    if "://" not in url:
        raise UsageError(f"--storage {url!r}: expected journal:PATH, sqlite:///PATH or postgresql://...")
    try:
        if heartbeat is None:
            return optuna.storages.RDBStorage(url)
        return optuna.storages.RDBStorage(url, heartbeat_interval=int(heartbeat), grace_period=3 * int(heartbeat))
    except Exception as exc:  # driver missing, server down, bad credentials: the user can fix it
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--storage {url!r}: cannot open: {first_line}") from exc


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Release database connections (RDB storages); a no-op for files."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()
