"""The run folder's own files: a safe run id, and ``run.json`` read and written in one piece.

Why the run id is restricted: it names a folder under ``--results`` and prefixes every study name,
so ``..``, a path separator or an absolute path would write outside the results folder. A run id
is 1 to 128 characters from ``A-Z a-z 0-9 . _ + = -``, starting with a letter or digit (the
default ids, ``<datasets>-<hash>``, are of this form).
"""
from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from harness.errors import UsageError

__all__ = ["RUN_ID_PATTERN", "check_run_id", "read_run_json", "write_json_atomic"]

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is safe as a folder name, else raise a one-line :class:`UsageError`."""
    if not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        raise UsageError(f"--run-id {run_id!r}: use 1-128 characters from A-Z a-z 0-9 . _ + = -, starting "
                         f"with a letter or digit, without '..' (it names a folder under --results)")
    return run_id


def read_run_json(run_file: Path) -> dict[str, Any]:
    """``run.json`` as a dict; a missing, unreadable or corrupt file is a one-line error."""
    try:
        data = json.loads(run_file.read_text())
    except FileNotFoundError:
        raise UsageError(f"{run_file.parent}: no run.json here; give a run id under --results or a run folder") \
            from None
    except OSError as exc:
        raise UsageError(f"{run_file}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{run_file} is corrupt ({exc}); restore it or start a new --run-id") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) or "run_id" not in data:
        raise UsageError(f"{run_file} is corrupt (no run_id or config); restore it or start a new --run-id")
    return data


def write_json_atomic(data: Any, path: Path) -> None:
    """Write JSON through a temporary file of a unique name, so neither a reader nor a second
    process writing at the same moment ever sees (or renames) a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
