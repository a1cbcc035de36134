"""The ``autospace`` plugin: registration, options (checked, recorded), incompatibility reasons,
and one real generation on digits whose stored result loads into a searchable space."""
from __future__ import annotations

import argparse
import importlib.metadata
import json

import numpy as np
import pytest
from _digits import digits_split
from harness_plugins.generators import autospace
from harness_plugins.generators._layerwise import LayerwiseSpace
from harness_plugins.spaces.convfc import ConvFCSpace
from harness_plugins.spaces.mbcell import MBCellSpace
from harness_plugins.spaces.nb201 import NB201Space

from harness.components import GenerationRequest, TabularBenchmark
from harness.errors import UsageError


def parsed(*argv: str) -> dict:
    parser = argparse.ArgumentParser()
    autospace.harness_addoption(parser)
    return vars(parser.parse_args(list(argv)))


def factory(options: dict, name: str = "autospace") -> autospace.AutoSpaceGenerator:
    (spec,) = [s for s in autospace.harness_generators() if s.name == name]
    return spec.factory(options)


def test_registered_with_documented_defaults() -> None:
    assert importlib.metadata.entry_points(group="harness")["autospace"].value == "harness_plugins.generators.autospace"
    assert importlib.metadata.entry_points(group="harness")["mbcell"].value == "harness_plugins.spaces.mbcell"
    config = factory(parsed()).config
    assert (config.population, config.k, config.tournament, config.threshold, config.eps, config.rebuild_every,
            config.madds_lambda, config.iterations, config.warmup, config.space_size) == (
        8, 4, 3, 0.3, 0.5, 5, 0.1, 600, 60, 200)
    assert not config.shared_cell
    options = parsed("--autospace-k", "3", "--autospace-lambda", "0.5", "--autospace-rebuild-every", "2",
                     "--autospace-shared-cell", "--autospace-space-size", "50")
    config = factory(options).config
    assert (config.k, config.madds_lambda, config.rebuild_every, config.shared_cell, config.space_size) == (
        3, 0.5, 2, True, 50)
    # the control reads the options it shares with autospace
    control = factory(options, "autospace-random")
    assert (control.k, control.threshold, control.space_size, control.shared_cell) == (3, 0.3, 50, True)


@pytest.mark.parametrize("argv, culprit", [
    (("--autospace-k", "9"), "autospace-k"),
    (("--autospace-k", "1"), "autospace-k"),
    (("--autospace-threshold", "0"), "autospace-threshold"),
    (("--autospace-threshold", "0.6"), "autospace-threshold"),  # r_H <= 1/2: 0.6 would constrain nothing
    (("--autospace-space-size", "1"), "autospace-space-size"),
    (("--autospace-eps", "1.5"), "autospace-eps"),
    (("--autospace-iterations", "0"), "autospace-iterations"),
    (("--autospace-lambda", "-1"), "autospace-lambda"),
])
def test_bad_options_are_one_line_usage_errors(argv, culprit) -> None:
    with pytest.raises(UsageError, match=culprit):
        factory(parsed(*argv))
    if culprit in ("autospace-k", "autospace-threshold", "autospace-space-size") and argv[1] != "9":
        with pytest.raises(UsageError, match=f"autospace-random: .*{culprit}"):
            factory(parsed(*argv), "autospace-random")


def test_bad_reference_or_op_set_names_the_option() -> None:
    base = NB201Space(channels=4, cells=1)
    with pytest.raises(UsageError, match="autospace-reference"):
        factory(parsed("--autospace-reference", "|conv~0|")).incompatible(base, None)
    with pytest.raises(UsageError, match="autospace-ops"):
        factory(parsed("--autospace-ops", "nor_conv_5x5")).incompatible(base, None)
    with pytest.raises(UsageError, match="autospace-ops"):  # the ResNet reference needs 3x3 convs
        factory(parsed("--autospace-ops", "skip_connect,nor_conv_1x1")).incompatible(base, None)
    ops = factory(parsed("--autospace-ops", "skip_connect,nor_conv_3x3")).template(base).ops
    assert ops == ("none", "skip_connect", "nor_conv_3x3")


class FakeTable(TabularBenchmark):
    def open(self, request):  # pragma: no cover - never opened here
        raise NotImplementedError

    def shape(self):  # pragma: no cover
        raise NotImplementedError


def test_incompatible_reasons() -> None:
    gen = factory(parsed())
    assert "cell space" in gen.incompatible(ConvFCSpace(), None)
    assert gen.incompatible(NB201Space(), None) is None and gen.incompatible(MBCellSpace(), None) is None
    assert "--autospace-shared-cell" in gen.incompatible(NB201Space(), FakeTable())
    shared = factory(parsed("--autospace-shared-cell"))
    assert "--generator-data" in shared.incompatible(NB201Space(), FakeTable())
    with_data = factory({**parsed("--autospace-shared-cell"), "generator_data": "digits"})
    assert with_data.incompatible(NB201Space(), FakeTable()) is None
    # the control trains nothing: a table needs no image data, but still the shared cell
    control = factory(parsed(), "autospace-random")
    assert "cell space" in control.incompatible(ConvFCSpace(), None)
    assert "--autospace-shared-cell" in control.incompatible(NB201Space(), FakeTable())
    shared_control = factory(parsed("--autospace-shared-cell"), "autospace-random")
    assert shared_control.incompatible(NB201Space(), FakeTable()) is None


@pytest.mark.parametrize("base, shared, eligible", [
    # d <= 3 of 6 edges differ at T = 0.3: sum_d C(6, d) (ops - 1)^d cells
    pytest.param(MBCellSpace(width=8), False, 1 + 6 * 7 + 15 * 49 + 20 * 343,
                 marks=pytest.mark.slow),  # ~10 s on 2 loaded cores
    (NB201Space(channels=4, cells=1), True, 1 + 6 * 4 + 15 * 16 + 20 * 64),
])
def test_generation_on_digits_records_its_options_and_loads_a_searchable_space(base, shared, eligible) -> None:
    argv = ["--autospace-iterations", "12", "--autospace-warmup", "2", "--autospace-batch-size", "32"]
    options = parsed(*argv, *(["--autospace-shared-cell"] if shared else []))
    gen = factory(options)
    data = digits_split(max_per_class=20)
    reported: list[tuple[int, int]] = []
    request = GenerationRequest(base, "base", "digits", data, data.shape, 0, "cpu", options,
                                progress=lambda done, total: reported.append((done, total)))
    state = gen.generate(request)
    # generation shows its progress: every iteration, up to the whole budget
    assert [done for done, _ in reported] == [*range(12), 12] and {total for _, total in reported} == {12}
    stored = json.loads(json.dumps({"space": state.space, "details": state.details}))  # storable as JSON
    details = stored["details"]
    assert details["config"]["iterations"] == 12 and details["config"]["k"] == 4 and details["rebuilds"] == 3
    assert details["shared_cell"] is shared and details["reference"] == gen.template(base).cell_id(
        base.cell_template().reference)
    assert len(stored["space"]["cells"]) == (1 if shared else 3)
    assert all(len(ids) == (200 if shared else 4) for ids in stored["space"]["cells"])
    assert all(len(ids) == 4 for ids in details["cells"])  # the paper's top-K, whose alphas are recorded
    assert details["space_size"] == (200 if shared else 4 ** 3) and type(details["space_size"]) is int
    assert details["eligible_cells"] == eligible
    if shared:
        assert details["space_scored"] + details["space_unscored"] + details["space_drawn"] == 200
        assert details["space_scored"] == len(details["scored"][0]) > 0
    space = gen.load(base, stored["space"])
    again = gen.load(base, stored["space"])
    assert isinstance(space, LayerwiseSpace) and space.decisions() == again.decisions()
    arch = space.sample(np.random.default_rng(0))
    assert space.build(arch, data.shape)(data.train_images[:2].float()).shape == (2, 10)
    # the same seed generates the same space
    assert gen.generate(request).space == state.space


def test_capabilities_are_known_before_generation() -> None:
    gen = factory(parsed())
    caps = gen.capabilities(NB201Space(channels=4, cells=1))  # 4^3 architectures: enumerable
    assert {"sample", "mutate", "decisions", "encode", "graph", "supernet", "enumerate"} <= caps
    assert "enumerate" not in gen.capabilities(NB201Space(cells=5))  # 4^15
    assert "enumerate" in factory(parsed("--autospace-shared-cell")).capabilities(NB201Space(cells=5))
    assert gen.capabilities(ConvFCSpace()) == frozenset()
    space = LayerwiseSpace(NB201Space(channels=4, cells=1), [["|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+"
                                                                "|skip_connect~0|none~1|skip_connect~2|"] * 1] * 3,
                           False)
    assert space.capabilities <= caps
