"""Decoding image files into one uint8 array, once, with an on-disk cache next to the data.

Why a cache: Tiny-ImageNet alone is 110,000 JPEGs; decoding them takes minutes on a small CPU and
every process of every run would pay it again. The decoded array (``N x 3 x R x R`` uint8, 1.2 GB
for Tiny-ImageNet's train split) is read back at disk speed instead.

The cache lives in ``<dataset folder>/.harness-cache/<name>-<key>.npz``. The key hashes everything
the array depends on: the format version, the target resolution, and every file's relative path,
size, modification time and label; change any and the cache is rebuilt (stale files are left for
the user to delete). Caches are written to a temporary file and moved into place with
``os.replace``, so a crash never leaves a half-written cache under the final name; a cache that
fails to load or does not match its key is rebuilt. An unwritable dataset folder only costs the
cache (logged), not the run.

Resizing: shorter side to ``R`` (bilinear, antialiased), then a centred ``R x R`` crop: what
torchvision's ``Resize(R)`` + ``CenterCrop(R)`` do. Images already ``R x R`` are untouched. JPEGs
much larger than ``R`` are decoded at a reduced DCT scale first (PIL's ``draft``), which is several
times faster for photos and still at least ``R`` pixels on the shorter side.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from harness.errors import DataError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CACHE_DIR", "IMAGE_EXTENSIONS", "decode_image", "list_images", "load_images"]

log = logging.getLogger(__name__)

CACHE_DIR = ".harness-cache"
#: Bump when decoding changes, so old caches are not reused.
CACHE_FORMAT = 1
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), in sorted path order: the "file order" that
    ``max_per_class`` and labels refer to, the same on every machine."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def decode_image(path: Path, resolution: int) -> np.ndarray:
    """One image file as a ``3 x R x R`` uint8 array (RGB; grey and palette images converted)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.draft("RGB", (resolution, resolution))  # JPEG only; a no-op for other formats
            if img.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: scale, or RGB clips it to white
                img = img.point(lambda v: v / 256).convert("L")
            rgb = _resize_center_crop(img.convert("RGB"), resolution)
            array = np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # PIL reports truncated files as OSError and some corrupt headers as SyntaxError
        raise DataError(f"corrupt image file {path} ({exc}); delete or replace it") from exc
    return array.transpose(2, 0, 1)


def _resize_center_crop(img, resolution: int):  # PIL images; PIL is imported lazily
    from PIL import Image

    w, h = img.size
    if (w, h) != (resolution, resolution):
        scale = resolution / min(w, h)
        size = (max(resolution, round(w * scale)), max(resolution, round(h * scale)))
        if size != (w, h):
            img = img.resize(size, Image.Resampling.BILINEAR)
        left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
        img = img.crop((left, top, left + resolution, top + resolution))
    return img


def load_images(files: Sequence[Path], labels: Sequence[int], *, resolution: int, base: Path,
                name: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``files`` to an ``N x 3 x R x R`` uint8 array, or read it from the cache in
    ``base/.harness-cache`` (``base`` is the dataset folder; ``name`` tells its caches apart).
    Returns (images, int64 labels), in the order given."""
    import numpy as np

    labels_array = np.asarray(labels, dtype=np.int64)
    key = _cache_key(files, labels_array, resolution, base)
    cache = base / CACHE_DIR / f"{name}-{key[:16]}.npz"
    cached = _read_cache(cache, key, len(files), resolution)
    if cached is not None:
        return cached, labels_array
    images = _decode_all(files, resolution)
    _write_cache(cache, key=np.array(key), images=images, labels=labels_array)
    return images, labels_array


def _cache_key(files: Sequence[Path], labels: np.ndarray, resolution: int, base: Path) -> str:
    entries = []
    for path, label in zip(files, labels.tolist()):
        try:
            st = path.stat()
        except OSError as exc:
            raise DataError(f"missing image file {path} ({exc}); restore it or remove it from the dataset") from exc
        entries.append([os.path.relpath(path, base), st.st_size, st.st_mtime_ns, label])
    import PIL

    # the decoder's version too: resizing output may change between Pillow releases
    blob = json.dumps({"format": CACHE_FORMAT, "resolution": resolution, "pillow": PIL.__version__,
                       "files": entries})
    return hashlib.sha256(blob.encode()).hexdigest()


def _decode_all(files: Sequence[Path], resolution: int) -> np.ndarray:
    import numpy as np

    images = np.empty((len(files), 3, resolution, resolution), dtype=np.uint8)
    if files:
        log.info("decoding %d images at %dx%d (cached afterwards)", len(files), resolution, resolution)
    # PIL releases the GIL while decoding, so threads use every core without pickling arrays
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        # decode_image is looked up at call time, so tests can count calls by patching it
        for i, array in enumerate(pool.map(lambda p: decode_image(p, resolution), files)):
            images[i] = array
    finally:
        # on a corrupt file, report it now rather than after decoding the rest of the dataset
        pool.shutdown(wait=True, cancel_futures=True)
    return images


def _read_cache(path: Path, key: str, count: int, resolution: int) -> np.ndarray | None:
    import zipfile

    import numpy as np

    if not path.is_file():
        return None
    try:
        # our own file handle: np.load leaks the one it opens when the content is not a zip
        with path.open("rb") as f:
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with npz:
                images = npz["images"] if str(npz["key"]) == key else None
                ok = (images is not None and images.dtype == np.uint8
                      and images.shape == (count, 3, resolution, resolution))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("rebuilding unreadable cache %s (%s)", path, exc)
        return None
    if not ok:
        log.warning("rebuilding cache %s: it does not match the dataset files", path)
        return None
    return images


def _write_cache(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` atomically: a temporary file in the same folder, fsynced, then
    ``os.replace``d (atomic on POSIX and Windows), so readers see the old state or the new one."""
    import numpy as np

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    except OSError as exc:
        log.warning("not caching decoded images: cannot write in %s (%s)", path.parent, exc)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # e.g. a full disk: the run goes on, uncached
        Path(tmp).unlink(missing_ok=True)
        log.warning("not caching decoded images in %s (%s)", path, exc)
    except BaseException:  # a crash or Ctrl-C mid-write: leave nothing half-written behind
        Path(tmp).unlink(missing_ok=True)
        raise
