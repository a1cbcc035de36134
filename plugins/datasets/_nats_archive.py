"""An official NATS-Bench archive, read through ``nats_bench`` one architecture file at a time.

The release's ``*-simple`` folders (``NATS-tss-v1_0-3ffb9-simple``, ``NATS-sss-v1_0-50262-simple``)
hold ``meta.pickle.pbz2`` (every architecture's string, in the benchmark's index order) and one
``NNNNNN.pickle.pbz2`` per architecture. ``nats_bench.create(path, space, fast_mode=True)`` reads
the meta file only; :meth:`Archive.runs` loads an architecture's file the first time it is asked
for (the library's own ``reload``, what its fast mode does), keeps the few numbers the harness
queries (:class:`Runs`) and lets go of the library's objects: a topology architecture's file
unpickles to ~1.9 MB of Python objects and its extract is ~30 kB, so a worker keeps every
architecture it has loaded without growing to gigabytes.

What is kept, per (architecture, dataset, schedule) and per training seed, is what
``get_more_info(index, dataset, iepoch, hp, is_random=seed)`` answers (its tests compare the two):

- the validation accuracy per epoch (``x-valid``; NaN where the archive recorded none: on the
  topology space's 200-epoch schedule, cifar100 and ImageNet16-120 have it after the last epoch
  only, the release's known layout);
- the training time up to each epoch (``train-all-time``: the benchmark's recorded time);
- the test accuracy after the last epoch (``ori-test`` for ``cifar10-valid``, ``x-test`` for
  cifar100 and ImageNet16-120);

and the architecture's MAdds and parameters (``get_cost_info``'s ``flops`` and ``params``, in
millions).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from harness.errors import DataError, UsageError

__all__ = [
    "ARCHIVE_NAMES",
    "DATASETS",
    "FULL_SCHEDULE",
    "TEST_SETS",
    "Archive",
    "Run",
    "Runs",
    "archive_dir",
    "open_archive",
]

#: The folder each space's archive has in the release (what ``--data-dir`` is searched for).
ARCHIVE_NAMES = {"tss": "NATS-tss-v1_0-3ffb9-simple", "sss": "NATS-sss-v1_0-50262-simple"}
#: The schedule (``hp``) each space's papers report: 200 epochs (topology), 90 (size).
FULL_SCHEDULE = {"tss": "200", "sss": "90"}
#: The datasets the harness offers, with their validation set (always ``x-valid``) and test set.
DATASETS = ("cifar10-valid", "cifar100", "ImageNet16-120")
TEST_SETS = {"cifar10-valid": "ori-test", "cifar100": "x-test", "ImageNet16-120": "x-test"}
VALID_SET = "x-valid"
_FILE = re.compile(r"^(\d+)\.pickle\.pbz2$")
_INSTALL = "pip install 'harness[nats]' (the PyPI package nats-bench)"


def archive_dir(options: Mapping[str, Any], space: str, data_dir: str | Path | None = None) -> Path:
    """Where the ``space`` archive is: ``--nats-tss-dir`` / ``--nats-sss-dir`` if given, else its
    release folder name under ``--data-dir``."""
    given = options.get(f"nats_{space}_dir")
    if given:
        return Path(str(given)).expanduser()
    base = data_dir if data_dir is not None else options.get("data_dir") or "data"
    return Path(str(base)).expanduser() / ARCHIVE_NAMES[space]


@dataclass(frozen=True)
class Run:
    """One training run (one seed, or the mean over seeds) of an architecture on a dataset."""

    #: the training seed, or ``None`` for the mean over the recorded seeds
    seed: int | None
    #: validation accuracy (%) after each epoch; NaN where the archive recorded none
    valid: np.ndarray
    #: recorded training seconds up to and including each epoch
    train_seconds: np.ndarray
    #: test accuracy (%) after the last epoch (NaN if not recorded)
    test: float

    @property
    def epochs(self) -> int:
        return len(self.valid)


@dataclass(frozen=True)
class Runs:
    """Every recorded run of one architecture on one dataset with one schedule."""

    runs: tuple[Run, ...]
    #: MAdds in millions (NATS-Bench's ``flops``)
    flops: float
    #: parameters in millions
    params: float

    @property
    def seeds(self) -> list[int]:
        return [int(r.seed) for r in self.runs if r.seed is not None]

    def seed(self, seed: int) -> Run:
        for run in self.runs:
            if run.seed == seed:
                return run
        raise KeyError(seed)

    def mean(self) -> Run:
        """The mean over seeds of every value, as ``is_random=False`` averages them."""
        return Run(None, np.mean([r.valid for r in self.runs], axis=0),
                   np.mean([r.train_seconds for r in self.runs], axis=0),
                   float(np.mean([r.test for r in self.runs])))


def _extract(results: Any, dataset: str) -> Runs:
    """The :class:`Runs` of one ``nats_bench.ArchResults`` on ``dataset``."""
    runs = []
    for seed in results.get_dataset_seeds(dataset):
        count = results.query(dataset, seed)  # a nats_bench.ResultsCount: one training run
        epochs = int(count.epochs)
        valid = np.array([count.eval_acc1es.get(f"{VALID_SET}@{i}", math.nan) for i in range(epochs)], dtype=float)
        times = count.train_times
        per_epoch = [math.nan if times is None or times.get(i) is None else times[i] for i in range(epochs)]
        test = count.eval_acc1es.get(f"{TEST_SETS[dataset]}@{epochs - 1}", math.nan)
        runs.append(Run(int(seed), valid, np.cumsum(np.array(per_epoch, dtype=float)), float(test)))
    costs = results.get_compute_costs(dataset)
    return Runs(tuple(runs), float(costs["flops"]), float(costs["params"]))


class Archive:
    """One archive folder opened with ``nats_bench`` in fast mode (see the module docstring)."""

    def __init__(self, path: Path, space: str) -> None:
        try:
            import nats_bench
        except ImportError:
            raise UsageError(f"NATS-Bench ({space}) needs the nats_bench package: {_INSTALL}") from None
        self.path, self.space = path, space
        meta = path / "meta.pickle.pbz2"
        if not meta.is_file():
            raise DataError(f"NATS-Bench {space} archive {path} not found (no {meta.name}): download "
                            f"{ARCHIVE_NAMES[space]} from the NATS-Bench release (GitHub D-X-Y/NATS-Bench) and "
                            f"give --nats-{space}-dir or put it under --data-dir")
        try:
            self.api = nats_bench.create(str(path), space, fast_mode=True, verbose=False)
        except Exception as exc:  # a truncated bz2, a foreign pickle: the library raises many types
            raise DataError(f"NATS-Bench {space} archive {meta} is unreadable: {exc}") from None
        self._runs: dict[tuple[int, str, str], Runs] = {}
        self._loaded: set[int] = set()

    def __len__(self) -> int:
        return len(self.api.meta_archs)

    def arch_string(self, index: int) -> str:
        """The benchmark's string of architecture ``index``."""
        return str(self.api.meta_archs[index])

    def index(self, arch_string: str) -> int:
        """The index of ``arch_string``; :class:`DataError` if the space has no such architecture."""
        index = self.api.archstr2index.get(arch_string)
        if index is None:
            raise DataError(f"NATS-Bench {self.space} archive {self.path} has no architecture {arch_string!r}")
        return int(index)

    def file_of(self, index: int) -> Path | None:
        """The file of architecture ``index`` (either name ``reload`` accepts), or ``None``."""
        for name in (f"{index:06d}.pickle.pbz2", f"{index}.pickle.pbz2"):
            if (self.path / name).is_file():
                return self.path / name
        return None

    def present(self) -> list[int]:
        """Indices whose file the folder holds (a partial archive holds some)."""
        found = {int(m.group(1)) for p in self.path.iterdir() if (m := _FILE.match(p.name))}
        return sorted(i for i in found if 0 <= i < len(self))

    @property
    def loaded(self) -> int:
        """How many architecture files this process has read."""
        return len(self._loaded)

    def runs(self, index: int, dataset: str, hp: str) -> Runs:
        """The runs of architecture ``index`` on ``dataset`` with schedule ``hp`` ("12", "200"...),
        reading its file on first use."""
        key = (index, dataset, hp)
        if key not in self._runs:
            if index in self._loaded:
                raise DataError(f"NATS-Bench {self.space} archive {self.path}: architecture {index} has no "
                                f"{hp}-epoch results on {dataset}")
            self._load(index)
        return self._runs[key]

    def _load(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise DataError(f"NATS-Bench {self.space} archive {self.path} has {len(self)} architectures, "
                            f"not {index}")
        if self.file_of(index) is None:
            raise DataError(f"NATS-Bench {self.space} archive {self.path} has no file for architecture {index} "
                            f"({self.arch_string(index)}): a partial archive; restrict the space to it with "
                            f"--nats-{self.space}-archs archive")
        try:
            self.api.reload(str(self.path), index)
            by_hp = self.api.arch2infos_dict.pop(index)
        except Exception as exc:  # truncated or foreign file
            raise DataError(f"NATS-Bench {self.space} archive {self.file_of(index)} is unreadable: {exc}") from None
        self.api.evaluated_indexes.discard(index)  # the library's copy is dropped: see the module docstring
        for hp, results in by_hp.items():
            for dataset in DATASETS:
                if dataset in results.get_dataset_names():
                    self._runs[(index, dataset, str(hp))] = _extract(results, dataset)
        self._loaded.add(index)


_OPEN: dict[tuple[str, str], Archive] = {}


def open_archive(path: Path, space: str) -> Archive:
    """The process's :class:`Archive` of ``path`` (opened once; what it loads stays loaded)."""
    key = (str(path.resolve()), space)
    if key not in _OPEN:
        _OPEN[key] = Archive(path, space)
    return _OPEN[key]
