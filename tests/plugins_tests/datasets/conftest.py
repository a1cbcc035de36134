"""Fixtures giving each test a fresh tiny dataset in its official format (see _dataset_files)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from _dataset_files import (
    Cifar100Files,
    DecodeCounter,
    TinyImageNetFiles,
    dump_legacy_pickle,
    solid_image,
    write_imagenet16,
)


@pytest.fixture
def cifar100_files(tmp_path: Path) -> Cifar100Files:
    return Cifar100Files(tmp_path / "data")


@pytest.fixture
def legacy_pickle() -> Callable[[object, Path], None]:
    return dump_legacy_pickle


@pytest.fixture
def imagenet16_writer() -> Callable[..., dict[str, dict]]:
    return write_imagenet16


@pytest.fixture
def tiny_files(tmp_path: Path) -> TinyImageNetFiles:
    return TinyImageNetFiles(tmp_path / "data")


@pytest.fixture
def image_writer() -> Callable[..., None]:
    return solid_image


@pytest.fixture
def decode_counter(monkeypatch: pytest.MonkeyPatch) -> DecodeCounter:
    return DecodeCounter(monkeypatch)
