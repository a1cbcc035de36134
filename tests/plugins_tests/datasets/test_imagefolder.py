"""ImageFolder plugin: class subsets, resizing, split discovery, cache and bad input, on real PNG
and JPEG files."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from _dataset_files import IMAGEFOLDER_COLORS, write_imagefolder
from harness_plugins.datasets import imagefolder
from harness_plugins.datasets.imagefolder import ImageFolder
from PIL import Image

from harness.components import DatasetRequest
from harness.errors import DataError, UsageError
from harness.testing import DatasetContract

COLORS = IMAGEFOLDER_COLORS
CLASSES = sorted(COLORS)


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "data" / "imagefolder"
    write_imagefolder(root)
    return root


class TestImageFolderContract(DatasetContract):
    dataset_name = "imagefolder"
    plugins = ["imagefolder"]
    options = {"imagefolder_resolution": 8}

    def prepare(self, data_dir: Path) -> None:
        if not (data_dir / "imagefolder").exists():
            write_imagefolder(data_dir / "imagefolder")


def load(data_dir: Path, **kwargs):
    options = {k: kwargs.pop(k) for k in ("root", "classes", "resolution") if k in kwargs}
    return ImageFolder(**options).load(DatasetRequest(data_dir=data_dir, **kwargs))


def test_reads_tree_at_the_target_resolution(tree):
    data = load(tree.parent, resolution=16)
    assert data.class_names == CLASSES
    assert tuple(data.train_images.shape) == (9, 3, 16, 16) and data.train_images.dtype == torch.uint8
    assert data.train_labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.test_labels.tolist() == [0, 1, 2]
    means = data.train_images.float().mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(means, [COLORS[c] for c in CLASSES for _ in range(3)], atol=3)


def test_resize_keeps_aspect_and_centre_crops(tmp_path):
    # 40x20: red | green | blue bands of 8 | 24 | 8 columns. Shorter side 20 -> 10 halves the width
    # to 20; the centred 10x10 crop keeps original columns 10..29: pure green. Squashing the image
    # instead would keep red and blue columns.
    root = tmp_path / "imagefolder"
    band = np.zeros((20, 40, 3), np.uint8)
    band[:, :8] = (255, 0, 0)
    band[:, 8:32] = (0, 255, 0)
    band[:, 32:] = (0, 0, 255)
    for split in ("train", "test"):
        (root / split / "c").mkdir(parents=True)
        Image.fromarray(band).save(root / split / "c" / "x.png")
    data = load(tmp_path, resolution=10)
    assert tuple(data.train_images.shape) == (1, 3, 10, 10)
    assert (data.train_images[0, 1] == 255).all() and (data.train_images[0, [0, 2]] == 0).all()


def test_native_size_images_are_untouched(tmp_path):
    root = tmp_path / "imagefolder"
    pixels = np.random.default_rng(0).integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
    for split in ("train", "test"):
        (root / split / "c").mkdir(parents=True)
        Image.fromarray(pixels).save(root / split / "c" / "x.png")
    data = load(tmp_path, resolution=12)
    np.testing.assert_array_equal(data.train_images[0].numpy(), pixels.transpose(2, 0, 1))


def test_first_n_classes(tree):
    data = load(tree.parent, classes="2", resolution=8)
    assert data.class_names == ["cat", "dog"]
    assert data.train_labels.tolist() == [0, 0, 0, 1, 1, 1] and data.test_labels.tolist() == [0, 1]


def test_class_list_file(tree, tmp_path):
    listing = tmp_path / "classes.txt"
    listing.write_text("# the fish and the cat\neel\ncat  # trailing comment\n\n")
    data = load(tree.parent, classes=str(listing), resolution=8)
    assert data.class_names == ["cat", "eel"]
    assert data.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    means = data.test_images.float().mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(means, [COLORS["cat"], COLORS["eel"]], atol=3)


def test_max_per_class_takes_first_files_in_sorted_order(tree, decode_counter):
    data = load(tree.parent, resolution=8, max_per_class=2)
    assert data.train_labels.tolist() == [0, 0, 1, 1, 2, 2]
    decoded = {p.relative_to(tree).as_posix() for p in decode_counter.paths}
    assert {f"train/{c}/{f}" for c in CLASSES for f in ("a.png", "b.jpg")} <= decoded
    assert not any("sub/c.PNG" in p for p in decoded)  # sorted: a.png < b.jpg < sub/c.PNG


def test_val_is_the_test_split_when_there_is_no_test(tree, image_writer):
    (tree / "test").rename(tree / "val")
    assert load(tree.parent, resolution=8).test_labels.tolist() == [0, 1, 2]


def test_test_wins_over_val(tree, image_writer):
    image_writer(tree / "val" / "cat" / "v1.png", (1, 2, 3))
    image_writer(tree / "val" / "cat" / "v2.png", (1, 2, 3))
    assert load(tree.parent, resolution=8).test_labels.tolist() == [0, 1, 2]


def test_absolute_root_and_options(tree, tmp_path):
    parser = argparse.ArgumentParser()
    imagefolder.harness_addoption(parser)
    defaults = vars(parser.parse_args([]))
    assert defaults == {"imagefolder_root": "imagefolder", "imagefolder_classes": "", "imagefolder_resolution": 32}
    options = vars(parser.parse_args(["--imagefolder-root", str(tree), "--imagefolder-classes", "1",
                                      "--imagefolder-resolution", "8"]))
    dataset = imagefolder._factory(options)
    data = dataset.load(DatasetRequest(data_dir=tmp_path / "elsewhere"))
    assert data.class_names == ["cat"] and tuple(data.train_images.shape) == (3, 3, 8, 8)
    with pytest.raises(UsageError, match="--imagefolder-resolution"):
        ImageFolder(resolution=0)


def test_cache_per_resolution(tree, decode_counter):
    first = load(tree.parent, resolution=8)
    assert decode_counter.calls == 12
    assert torch.equal(load(tree.parent, resolution=8).train_images, first.train_images)
    assert decode_counter.calls == 12
    load(tree.parent, resolution=6)
    assert decode_counter.calls == 24
    names = sorted(p.name.rsplit("-", 1)[0] for p in (tree / ".harness-cache").iterdir())
    assert names == ["test-6px", "test-8px", "train-6px", "train-8px"]


# --- bad input ----------------------------------------------------------------------------------


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match=r"missing dataset folder .*imagefolder; give --imagefolder-root"):
        load(tmp_path)


def test_missing_train(tree):
    (tree / "train").rename(tree / "training")
    with pytest.raises(DataError, match=r"missing dataset folder .*imagefolder/train;"):
        load(tree.parent)


def test_missing_test_split(tree):
    (tree / "test").rename(tree / "holdout")
    with pytest.raises(DataError, match=r"missing test split: neither .*imagefolder/test nor .*imagefolder/val"):
        load(tree.parent)


def test_empty_class(tree):
    (tree / "train" / "bat").mkdir()
    with pytest.raises(DataError, match=r"class 'bat' has no image in .*imagefolder/train/bat; "):
        load(tree.parent)


def test_too_many_classes(tree):
    with pytest.raises(DataError, match=r"--imagefolder-classes 4: .*train has 3 classes; choose 1..3"):
        load(tree.parent, classes="4")


def test_unknown_class_in_list(tree, tmp_path):
    listing = tmp_path / "classes.txt"
    listing.write_text("cat\ncow\n")
    with pytest.raises(DataError, match=r"class 'cow' listed in .*classes.txt has no folder in .*train"):
        load(tree.parent, classes=str(listing))


def test_missing_class_list(tree, tmp_path):
    with pytest.raises(DataError, match=r"missing class list .*nope.txt"):
        load(tree.parent, classes=str(tmp_path / "nope.txt"))


def test_corrupt_image(tree):
    (tree / "test" / "dog" / "t.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"corrupt image file .*test/dog/t.png"):
        load(tree.parent, resolution=8)
    # the train split was decoded and cached before the test split failed; no test cache exists
    assert [p.name.split("-")[0] for p in (tree / ".harness-cache").iterdir()] == ["train"]


def test_sixteen_bit_grey_png_keeps_its_contrast(tmp_path) -> None:
    import numpy as np
    from harness_plugins.datasets._images import decode_image
    from PIL import Image

    path = tmp_path / "deep.png"
    Image.fromarray((np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)).save(path)
    pixels = decode_image(path, 32)
    assert pixels.min() < 10 and pixels.max() > 240  # a ramp, not clipped to white
