"""The device batch pipeline: crop+flip really moves content as torchvision's per-sample
transforms would, and evaluation batches are the untouched, normalised originals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.training.augment import random_crop_flip
from harness.training.batches import DeviceData, Normaliser, iterate_batches

H = W = 8
PAD = 2


def reference_views(image: np.ndarray, padding: int) -> dict[tuple[int, int, bool], np.ndarray]:
    """Every output RandomCrop(padding) + RandomHorizontalFlip can give, by (dy, dx, flipped),
    computed independently with numpy: zero-pad, slice, mirror."""
    h, w = image.shape[-2:]
    padded = np.pad(image, [(0, 0)] * (image.ndim - 2) + [(padding, padding)] * 2)
    views = {}
    for oy in range(2 * padding + 1):
        for ox in range(2 * padding + 1):
            crop = padded[..., oy:oy + h, ox:ox + w]
            # content moves by padding - offset
            views[(padding - oy, padding - ox, False)] = crop
            views[(padding - oy, padding - ox, True)] = crop[..., ::-1]
    return views


def classify(outputs: np.ndarray, views: dict) -> list[tuple[int, int, bool]]:
    """For each output, the one reference view it equals exactly (fails if none does)."""
    keys = list(views)
    stack = np.stack([views[k] for k in keys])  # V x C x H x W
    equal = (outputs[:, None] == stack[None]).all(axis=(2, 3, 4))  # N x V
    assert (equal.sum(axis=1) == 1).all(), "an output is not a padded crop (+ flip) of the input"
    return [keys[i] for i in equal.argmax(axis=1)]


@pytest.fixture
def positions() -> torch.Tensor:
    # every pixel distinct and non-zero, so padding (zeros) and every shift are recognisable
    return (torch.arange(H * W, dtype=torch.int64) + 1).reshape(1, 1, H, W)


def test_shape_dtype_and_input_untouched(positions):
    images = positions.repeat(5, 3, 1, 1).to(torch.uint8)
    before = images.clone()
    out = random_crop_flip(images, padding=PAD, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8 and out.is_contiguous()
    assert torch.equal(images, before)


def test_every_output_is_a_crop_and_offsets_and_flips_are_uniform(positions):
    n = 4000
    batch = positions.repeat(n, 1, 1, 1)
    out = random_crop_flip(batch, padding=PAD, generator=torch.Generator().manual_seed(1)).numpy()
    drawn = classify(out, reference_views(positions[0].numpy(), PAD))
    shifts = {(dy, dx) for dy, dx, _ in drawn}
    assert shifts == {(dy, dx) for dy in range(-PAD, PAD + 1) for dx in range(-PAD, PAD + 1)}
    flipped = np.mean([f for _, _, f in drawn])
    assert abs(flipped - 0.5) < 0.04  # 4000 fair coins: std 0.008
    counts = np.bincount([(dy + PAD) * (2 * PAD + 1) + dx + PAD for dy, dx, _ in drawn])
    expected = n / (2 * PAD + 1) ** 2
    assert counts.min() > 0.6 * expected and counts.max() < 1.4 * expected  # each image its own offset


def test_bright_pixel_moves_by_at_most_the_padding():
    image = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    image[..., 10, 8] = 255
    out = random_crop_flip(image.repeat(500, 1, 1, 1), padding=4, generator=torch.Generator().manual_seed(2))
    for sample in out:
        ys, xs = torch.nonzero(sample[0], as_tuple=True)
        assert len(ys) == 1 and (sample[:, ys, xs] == 255).all()
        y, x = int(ys), int(xs)
        assert abs(y - 10) <= 4
        # unflipped the column stays within 4..12, flipped (31 - 8 = 23) within 19..27
        assert abs(x - 8) <= 4 or abs(x - 23) <= 4


def test_no_padding_only_flips(positions):
    out = random_crop_flip(positions.repeat(200, 1, 1, 1), padding=0, generator=torch.Generator().manual_seed(3))
    unflipped = (out == positions).all(dim=(1, 2, 3))
    flipped = (out == positions.flip(3)).all(dim=(1, 2, 3))
    assert (unflipped ^ flipped).all() and 60 < int(flipped.sum()) < 140


def test_same_generator_same_augmentation(positions):
    batch = positions.repeat(50, 1, 1, 1)
    a = random_crop_flip(batch, generator=torch.Generator().manual_seed(7))
    b = random_crop_flip(batch, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


# --- iterate_batches ----------------------------------------------------------------------------


@pytest.fixture
def data() -> DeviceData:
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, size=(37, 3, H, W), dtype=np.uint8))
    labels = torch.arange(37, dtype=torch.int64)  # label = index, so order is visible
    return DeviceData.create(images, labels, "cpu")


def test_normaliser_matches_numpy(data):
    norm = Normaliser.fit(data.images)
    x = data.images.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(norm.mean.flatten(), x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(norm.std.flatten(), x.std(axis=(0, 2, 3), ddof=1), rtol=1e-4)


def test_normaliser_is_exact_whatever_the_chunking(data, monkeypatch):
    """fit() counts values chunk by chunk instead of copying the images as floats: the statistics
    are the exact float64 ones (rounded to float32), however the images are chunked."""
    from harness.training import batches

    x = data.images.numpy().astype(np.float64) / 255
    whole = Normaliser.fit(data.images)
    monkeypatch.setattr(batches, "_FIT_CHUNK", 5)  # 37 images: 7 full chunks and a partial one
    chunked = Normaliser.fit(data.images)
    for norm in (whole, chunked):
        assert norm.mean.shape == norm.std.shape == (1, 3, 1, 1) and norm.mean.dtype == torch.float32
        np.testing.assert_allclose(norm.mean.flatten(), x.mean(axis=(0, 2, 3)), rtol=1e-7)
        np.testing.assert_allclose(norm.std.flatten(), x.std(axis=(0, 2, 3), ddof=1), rtol=1e-7)
    assert torch.equal(whole.mean, chunked.mean) and torch.equal(whole.std, chunked.std)


def test_normaliser_takes_uint8_images_only(data):
    with pytest.raises(TypeError, match="uint8"):
        Normaliser.fit(data.images.float())


def test_evaluation_batches_are_the_normalised_originals_in_order(data):
    norm = Normaliser.fit(data.images)
    batches = list(iterate_batches(data, 10, norm, shuffle=False, augment=False))
    assert [len(y) for _, y in batches] == [10, 10, 10, 7]
    x = torch.cat([b for b, _ in batches])
    y = torch.cat([labels for _, labels in batches])
    assert torch.equal(y, data.labels)
    expected = (data.images.double() / 255 - norm.mean.double()) / norm.std.double()
    torch.testing.assert_close(x.double(), expected, rtol=0, atol=1e-5)
    assert x.dtype == torch.float32


def test_training_batches_are_augmented_and_keep_labels(data):
    norm = Normaliser.fit(data.images)
    gen = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(data, 37, norm, shuffle=False, augment=True, padding=PAD, generator=gen))
    [(x, y)] = batches
    assert torch.equal(y, data.labels)
    originals = norm(data.images)
    assert not torch.equal(x, originals)
    # each augmented image is one of the crops (+ flips) of its own source image
    for i in range(len(y)):
        views = reference_views(data.images[i].numpy(), PAD)
        candidates = torch.stack([norm(torch.from_numpy(v.copy())[None])[0] for v in views.values()])
        assert (candidates == x[i]).flatten(1).all(dim=1).any(), i


def test_shuffle_is_a_seeded_permutation(data):
    norm = Normaliser.fit(data.images)

    def labels(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.cat([y for _, y in iterate_batches(data, 8, norm, shuffle=True, generator=gen)])

    first = labels(0)
    assert sorted(first.tolist()) == list(range(37)) and first.tolist() != list(range(37))
    assert torch.equal(first, labels(0)) and not torch.equal(first, labels(1))


def test_drop_last_and_channels_last(data):
    norm = Normaliser.fit(data.images)
    batches = list(iterate_batches(data, 10, norm, shuffle=False, drop_last=True, channels_last=True))
    assert [len(y) for _, y in batches] == [10, 10, 10]
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x, _ in batches)
    # fewer images than one batch: drop_last still yields them rather than nothing
    assert len(list(iterate_batches(data, 100, norm, shuffle=False, drop_last=True))) == 1
