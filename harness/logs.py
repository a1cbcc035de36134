"""Where log records go: the console shows the harness's own messages; libraries' warnings and
log records (Optuna's per-trial "sampled independently" notices, PyTorch and scikit-learn
warnings) go to the run's log file, ``results/<run-id>/harness.log``.

Why: a default ``harness bench`` emitted over a hundred lines of Optuna warnings between the
progress bar and the table. They matter to whoever audits a run, so they are kept, in the run
folder; where one changes what a strategy does, the cell table says so in its ``note`` column.

Records are buffered in memory until the run folder has its ``run.json``, so a command refused
for bad input writes nothing under ``--results``.
"""
from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path
from typing import TextIO

__all__ = ["LOG_FORMAT", "LOG_NAME", "RunLogHandler", "log_exception_to", "route_library_logs",
           "unroute_library_logs"]

LOG_NAME = "harness.log"
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
#: Loggers whose records the console keeps (the harness and its built-in plugins).
CONSOLE_LOGGERS = ("harness", "harness_plugins", "__main__")
_MAX_BUFFERED = 10_000


class RunLogHandler(logging.Handler):
    """Appends every record to ``<run_dir>/harness.log`` once the run folder exists."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(logging.DEBUG)
        self.run_dir = Path(run_dir)
        #: the log file could not be written (a full disk): the handler drops records from then on
        self._broken = False
        self._stream: TextIO | None = None
        self._buffer: list[str] = []
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if self._broken:
            return
        try:
            text = self.format(record) + "\n"
            if self._stream is None and (self.run_dir / "run.json").exists():
                self._stream = (self.run_dir / LOG_NAME).open("a", encoding="utf-8")
                self._stream.write("".join(self._buffer))
                self._buffer.clear()
            if self._stream is None:
                if len(self._buffer) < _MAX_BUFFERED:
                    self._buffer.append(text)
                return
            self._stream.write(text)
            self._stream.flush()
        except OSError as exc:  # one line (none for a full disk: the command's own error says so)
            self._broken = True
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                sys.stderr.write(f"harness: the run's log {self.run_dir / LOG_NAME} cannot be written "
                                 f"({exc.strerror or exc}); it stops here\n")
        except Exception:  # noqa: BLE001 - logging must never stop a run
            self.handleError(record)

    def close(self) -> None:
        try:
            if self._stream is None and self._buffer and not self._broken and (self.run_dir / "run.json").exists():
                self._stream = (self.run_dir / LOG_NAME).open("a", encoding="utf-8")
                self._stream.write("".join(self._buffer))
            if self._stream is not None:
                self._stream.close()
        except OSError:  # a full disk: what could not be written is lost, and the command says why
            self._broken = True
        finally:
            self._stream = None
            self._buffer.clear()
            super().close()


def log_exception_to(folder: Path, message: str, logger: str = "harness") -> Path | None:
    """Append ``message`` and the traceback of the exception being handled to ``folder``'s
    ``harness.log``, in the run log's format, and return the file (``None`` if it cannot be
    written).

    Written directly rather than through ``logging``: the console handler shows the harness's own
    records, and a caller that reports the failure in one line must not also print the traceback.
    """
    record = logging.LogRecord(logger, logging.ERROR, __file__, 0, message, None, sys.exc_info())
    path = Path(folder) / LOG_NAME
    try:
        with path.open("a", encoding="utf-8") as stream:
            stream.write(logging.Formatter(LOG_FORMAT).format(record) + "\n")
    except OSError:
        return None
    return path


#: Records for the run's ``harness.log`` only: the console has already had them in one line (an
#: observer plugin's traceback, say). Its name is outside :data:`CONSOLE_LOGGERS` on purpose.
LOG_ONLY = logging.getLogger("harness-log-only")


class _HarnessOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] in CONSOLE_LOGGERS


def route_library_logs(run_dir: Path) -> RunLogHandler:
    """Install the run's log file on the root logger, send Optuna's records and Python warnings
    there, and keep only the harness's own records on the console handlers. Idempotent."""
    import optuna

    unroute_library_logs()
    root = logging.getLogger()
    handler = RunLogHandler(run_dir)
    root.addHandler(handler)
    for existing in root.handlers:
        if isinstance(existing, logging.StreamHandler) and not isinstance(existing, logging.FileHandler) \
                and not any(isinstance(f, _HarnessOnly) for f in existing.filters):
            existing.addFilter(_HarnessOnly())
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, RunLogHandler) for h in root.handlers):
        console = logging.StreamHandler()  # a worker process without the CLI's console handler
        console.setLevel(logging.WARNING)
        console.addFilter(_HarnessOnly())
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(console)
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.captureWarnings(True)
    return handler


def unroute_library_logs() -> None:
    """Undo :func:`route_library_logs` (the CLI calls it when a command ends)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, RunLogHandler):
            root.removeHandler(handler)
            handler.close()
        for f in list(handler.filters):
            if isinstance(f, _HarnessOnly):
                handler.removeFilter(f)
    logging.captureWarnings(False)

