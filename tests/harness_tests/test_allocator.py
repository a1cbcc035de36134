"""The allocator setting: large buffers stay in the process, in the main process and in workers,
and run.json says which setting was in force."""
from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import allocator
from harness.errors import UsageError

glibc = pytest.mark.skipif(allocator._glibc() is None, reason="glibc only")
BIG = 64 << 20  # above glibc's default mmap threshold (128 KiB, dynamic up to 32 MiB)


def big_block_is_mmapped() -> bool:
    """Whether glibc serves a 64 MiB ``malloc`` by ``mmap`` (bit 2 of the chunk's size field):
    the behaviour the setting changes."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    ptr = libc.malloc(BIG)
    try:
        return bool(ctypes.c_size_t.from_address(ptr - ctypes.sizeof(ctypes.c_size_t)).value & 2)
    finally:
        libc.free(ptr)


def _probe(env: dict[str, str], configure: bool) -> dict[str, Any]:
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from test_allocator import big_block_is_mmapped;"
            "from harness import allocator;"
            f"setting = allocator.configure() if {configure} else None;"
            "print(json.dumps({'setting': setting, 'mmapped': big_block_is_mmapped()}))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)
    return json.loads(out.stdout)


@glibc
def test_large_blocks_are_reused_instead_of_mapped_per_allocation() -> None:
    assert _probe({}, configure=False)["mmapped"]  # glibc's default: a fresh mapping per block
    probe = _probe({}, configure=True)
    assert not probe["mmapped"]
    assert probe["setting"]["mallopt"] == {"M_MMAP_THRESHOLD": allocator.THRESHOLD,
                                           "M_TRIM_THRESHOLD": allocator.THRESHOLD}
    plain = _probe({allocator.ENV: "plain"}, configure=True)
    assert plain["mmapped"] and plain["setting"]["mallopt"] is None
    assert plain["setting"]["reason"] == f"{allocator.ENV}=plain"


def _report_worker_setting(queue: Any) -> None:
    from harness.runner import _set_threads

    _set_threads(SimpleNamespace(threads=1, jobs=2))  # what runner._worker_process does first
    queue.put((allocator.current(), big_block_is_mmapped() if allocator._glibc() else None))


def test_a_spawned_worker_gets_the_main_process_setting() -> None:
    import torch

    from harness.runner import _set_threads

    threads = torch.get_num_threads()
    _set_threads(SimpleNamespace(threads=threads, jobs=1))  # as run_bench / run_worker do
    main = allocator.current()
    assert main is not None
    context = multiprocessing.get_context("spawn")  # as --jobs starts its workers
    queue = context.Queue()
    sys.path.insert(0, str(Path(__file__).parent))  # the child unpickles this module's function
    try:
        proc = context.Process(target=_report_worker_setting, args=(queue,))
        proc.start()
        worker, mmapped = queue.get(timeout=120)
        proc.join(60)
    finally:
        sys.path.remove(str(Path(__file__).parent))
    assert worker == main
    if main["mallopt"]:
        assert mmapped is False


def test_run_json_records_the_setting(bench_args: list[str], tmp_path: Path) -> None:
    from harness.cli import main

    assert main([*bench_args, "--trials", "1", "--epochs", "1", "--run-id", "alloc"]) == 0
    metadata = json.loads((tmp_path / "results" / "alloc" / "run.json").read_text())
    assert metadata["allocator"] == allocator.current() and metadata["allocator"]["reason"]


def test_other_platforms_and_preloaded_allocators_are_left_alone() -> None:
    other = allocator._apply("", None, None)
    assert other["mallopt"] is None and "not glibc" in other["reason"]
    preloaded = allocator._apply("", "tcmalloc", None)
    assert preloaded["allocator"] == "tcmalloc" and preloaded["mallopt"] is None
    with pytest.raises(UsageError, match="HARNESS_ALLOCATOR='fast'"):
        allocator._apply("fast", None, None)
