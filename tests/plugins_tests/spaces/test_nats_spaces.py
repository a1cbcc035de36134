"""The nats-sss and nats-tss spaces: the size space's decisions, encodings and networks (checked
against the official sample's recorded MAdds and parameters), and restriction to an archive."""
from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from harness_plugins.spaces._restricted import RestrictedSpace
from harness_plugins.spaces.nats import (
    CHANNELS,
    LAYERS,
    SizeSpace,
    parse_indices,
    parse_size_string,
    restrict,
    size_string,
)
from harness_plugins.spaces.nb201 import NB201Space, parse_arch_string

from harness.components import InputShape
from harness.errors import UsageError
from harness.measure import count_params, madds_of_builder
from harness.testing import SpaceContract

SAMPLE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "nats-bench-sample"
ARCHIVES = {"tss": "NATS-tss-v1_0-3ffb9-simple", "sss": "NATS-sss-v1_0-50262-simple"}
SHAPES = {"cifar10-valid": InputShape(3, 32, 32, 10), "cifar100": InputShape(3, 32, 32, 100),
          "ImageNet16-120": InputShape(3, 16, 16, 120)}


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A writable copy of the sample archives under ``tmp_path / "nats"``."""
    if not SAMPLE.is_dir():
        pytest.skip(f"the NATS-Bench sample archives are not at {SAMPLE}")
    pytest.importorskip("nats_bench", reason="the nats_bench package (pip install 'harness[nats]')")
    root = tmp_path / "nats"
    for name in ARCHIVES.values():
        shutil.copytree(SAMPLE / name, root / name)
        for path in (root / name).iterdir():
            path.chmod(0o644)
    return root


def library(root: Path, space: str):  # noqa: ANN201 - nats_bench is untyped
    import nats_bench

    return nats_bench.create(str(root / ARCHIVES[space]), space, fast_mode=True, verbose=False)


class TestSizeSpaceContract(SpaceContract):
    space_name = "nats-sss"
    shape = InputShape(3, 16, 16, 10)


class TestTopologySpaceContract(SpaceContract):
    space_name = "nats-tss"
    shape = InputShape(3, 8, 8, 10)


# ---------------------------------------------------------------------------------------------
# The size space
# ---------------------------------------------------------------------------------------------


def test_size_networks_have_the_madds_and_parameters_the_benchmark_records(sample: Path) -> None:
    api = library(sample, "sss")
    space = SizeSpace()
    for index in (0, 11, 284):
        arch = parse_size_string(api.meta_archs[index])
        for dataset, shape in SHAPES.items():
            cost = api.get_cost_info(index, dataset, hp="12")
            # NATS-Bench also counts the classifier's bias as MAdds (one per class)
            madds = madds_of_builder(functools.partial(space.build, arch, shape), shape) + shape.num_classes
            assert madds / 1e6 == pytest.approx(cost["flops"], abs=1e-6)
            assert count_params(space.build(arch, shape)) / 1e6 == pytest.approx(cost["params"], abs=1e-9)


def test_enumeration_follows_the_benchmark_index_order(sample: Path) -> None:
    api = library(sample, "sss")
    assert [size_string(a) for a in SizeSpace().enumerate()] == list(api.meta_archs)


def test_sampler_sees_ordered_channel_counts() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    arch = SizeSpace().suggest(trial)
    assert set(arch) == set(LAYERS) and all(arch[layer] in CHANNELS for layer in LAYERS)
    for layer in LAYERS:
        distribution = trial.distributions[layer]
        assert isinstance(distribution, optuna.distributions.IntDistribution)
        assert (distribution.low, distribution.high, distribution.step) == (8, 64, 8)


def test_identity_sample_mutate_and_encodings() -> None:
    space, rng = SizeSpace(), np.random.default_rng(0)
    assert size_string(parse_size_string("8:16:24:32:64")) == "8:16:24:32:64"
    with pytest.raises(ValueError, match="channel counts"):
        parse_size_string("8:16:24:32:65")
    with pytest.raises(ValueError, match="not a NATS-Bench size architecture"):
        space.arch_id({"layer1": 8})
    for _ in range(50):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert sum(arch[k] != child[k] for k in LAYERS) == 1  # one edit, never a copy
        code = space.encode(arch)
        assert code.shape == (40,) and code.sum() == 5
        adjacency, features = space.graph(arch)
        assert adjacency.shape == (7, 7) and adjacency.sum() == 6 and features.shape == (7, 10)
        assert (features.sum(axis=1) == 1).all()
    assert len(SizeSpace().enumerate()) == 8 ** 5
    assert [name for name, _ in space.decisions()] == list(LAYERS)


# ---------------------------------------------------------------------------------------------
# Restriction
# ---------------------------------------------------------------------------------------------


def test_index_lists_and_ranges() -> None:
    assert parse_indices("284, 0,11", 300) == [0, 11, 284]
    assert parse_indices("0-3,2", 10) == [0, 1, 2, 3]
    for bad in ("a", "3-1", "10", "1-", ""):
        with pytest.raises(ValueError):
            parse_indices(bad, 10)


@pytest.mark.parametrize("space", ["tss", "sss"])
@pytest.mark.parametrize("which", ["archive", "0,11,284", "0, 11, 284"])
def test_restricted_to_the_archive_the_space_offers_only_its_architectures(sample: Path, space: str,
                                                                         which: str) -> None:
    api = library(sample, space)
    base = NB201Space() if space == "tss" else SizeSpace()
    restricted = restrict(base, space, {"data_dir": str(sample), f"nats_{space}_archs": which})
    assert isinstance(restricted, RestrictedSpace)
    held = {api.meta_archs[i] for i in (0, 11, 284)}
    assert {restricted.arch_id(a) for a in restricted.enumerate()} == held
    rng = np.random.default_rng(0)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        arch = restricted.suggest(trial)
        study.tell(trial, 0.5)
        assert restricted.arch_id(arch) in held
        assert restricted.arch_id(restricted.sample(rng)) in held
        child = restricted.mutate(arch, rng)
        assert restricted.arch_id(child) in held - {restricted.arch_id(arch)}
        assert np.array_equal(restricted.encode(arch), base.encode(arch))
    assert "decisions" not in restricted.capabilities and "supernet" not in restricted.capabilities


def test_restricted_mutation_prefers_the_nearest_architectures() -> None:
    base = SizeSpace()
    allowed = [parse_size_string(s) for s in ("8:8:8:8:8", "8:8:8:8:16", "64:64:64:64:64")]
    restricted = RestrictedSpace(base, allowed)
    rng = np.random.default_rng(0)
    assert {size_string(restricted.mutate(allowed[0], rng)) for _ in range(20)} == {"8:8:8:8:16"}
    assert len(RestrictedSpace(base, allowed[:1]).mutate(allowed[0], rng)) == 5  # nowhere else to go


def test_all_leaves_the_space_whole_without_an_archive(tmp_path: Path) -> None:
    assert isinstance(restrict(SizeSpace(), "sss", {"data_dir": str(tmp_path)}), SizeSpace)
    assert isinstance(restrict(NB201Space(), "tss", {"nats_tss_archs": "all"}), NB201Space)


def test_bad_restrictions_are_one_line_usage_errors(sample: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--nats-sss-archs '0-40000': '0-40000' is not within 0-32767"):
        restrict(SizeSpace(), "sss", {"data_dir": str(sample), "nats_sss_archs": "0-40000"})
    with pytest.raises(UsageError, match="--nats-tss-archs 'some'"):
        restrict(NB201Space(), "tss", {"data_dir": str(sample), "nats_tss_archs": "some"})
    with pytest.raises(UsageError, match="NATS-tss-v1_0-3ffb9-simple"):  # no archive to restrict to
        restrict(NB201Space(), "tss", {"data_dir": str(tmp_path), "nats_tss_archs": "archive"})
    for path in (sample / ARCHIVES["sss"]).glob("0*.pickle.pbz2"):
        path.unlink()
    with pytest.raises(UsageError, match="holds no architecture file"):
        restrict(SizeSpace(), "sss", {"data_dir": str(sample), "nats_sss_archs": "archive"})


def test_restricted_topology_architectures_are_nb201_architectures(sample: Path) -> None:
    api = library(sample, "tss")
    restricted = restrict(NB201Space(), "tss", {"data_dir": str(sample), "nats_tss_archs": "11"})
    (arch,) = restricted.enumerate()
    assert arch == parse_arch_string(api.meta_archs[11])
