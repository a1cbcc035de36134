"""Batch augmentation on the device: random crop with zero padding, and horizontal flip.

Vectorised over the batch (one gather, one ``where``), so no per-sample Python runs in the hot
loop. Each image gets its own crop offset and its own flip coin, as with torchvision's
``RandomCrop(padding=p)`` + ``RandomHorizontalFlip()`` applied per sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["random_crop_flip"]


def random_crop_flip(images: torch.Tensor, *, padding: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a randomly cropped (after zero-padding by ``padding``) and flipped copy of ``images``
    (``B x C x H x W``, any dtype); the input is not modified."""
    b, c, h, w = images.shape
    device = images.device
    if padding > 0:
        padded = F.pad(images, (padding, padding, padding, padding))
        oy = torch.randint(0, 2 * padding + 1, (b,), device=device, generator=generator)
        ox = torch.randint(0, 2 * padding + 1, (b,), device=device, generator=generator)
        rows = (oy[:, None] + torch.arange(h, device=device))[:, :, None]  # B x H x 1
        cols = (ox[:, None] + torch.arange(w, device=device))[:, None, :]  # B x 1 x W
        batch = torch.arange(b, device=device)[:, None, None]
        images = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    flip = torch.rand(b, device=device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images).contiguous()
