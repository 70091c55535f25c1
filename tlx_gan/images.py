"""Pictures as bytes: sample grids (in the format their file name asks for) and loss curves. Framework-free
(numpy, Pillow, matplotlib); the callers write the bytes (:func:`tlx_gan.outputs.write_bytes`)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tlx_gan.errors import UserError


def grid(images: np.ndarray, columns: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile square images, (N, s * s) or (N, s, s), in [-1, 1] into one uint8 picture (white gaps between). A
    diverged generator's NaN pixels are drawn black, its infinities clipped, without a warning."""
    images = np.asarray(images, dtype=np.float32)
    side = math.isqrt(math.prod(images.shape[1:]))
    images = np.nan_to_num(images, nan=-1.0).reshape(len(images), side, side)
    n = len(images)
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    pixels = np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    canvas = np.full((rows * (side + pad) + pad, columns * (side + pad) + pad), 255, dtype=np.uint8)
    for i, image in enumerate(pixels):
        r, c = divmod(i, columns)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        canvas[top:top + side, left:left + side] = image
    if scale > 1:
        canvas = np.kron(canvas, np.ones((scale, scale), dtype=np.uint8))
    return canvas


# Picture formats by file suffix: the file holds what its name says.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF"}


def image_format(path: str | Path, flag: str = "--out") -> str:
    """The Pillow format for ``path``'s suffix, or one line listing the suffixes tlx-gan writes."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise UserError(f"{flag} {path}: unknown picture type {suffix or '(no suffix)'!r}: name a "
                        f"{', '.join(IMAGE_FORMATS)} file")
    return IMAGE_FORMATS[suffix]


def encode(picture: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return buffer.getvalue()


def png_bytes(picture: np.ndarray) -> bytes:
    return encode(picture, "PNG")


def grid_picture(images: np.ndarray, path: str | Path, columns: int | None = None, scale: int = 2) -> bytes:
    """The grid of ``images`` encoded as ``path``'s suffix says (PNG, JPEG, ...)."""
    return encode(grid(images, columns, scale=scale), image_format(path))


def loss_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], title: str = "") -> bytes:
    """PNG of D and G losses per step; ``curves`` maps a label (a backend) to {"step", "d_loss", "g_loss"}."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    # different dash patterns: backends that agree draw on top of each other and must stay visible
    styles = ("-", "--", ":", "-.")
    for index, (label, curve) in enumerate(curves.items()):
        steps = np.asarray(curve["step"])
        color = f"C{index}"
        for axis, key in zip(axes, ("d_loss", "g_loss")):
            values = np.asarray(curve[key], dtype=np.float64)
            axis.plot(steps, values, alpha=0.15, linewidth=0.8, color=color)
            axis.plot(steps, _smooth(values), label=label, color=color, linewidth=1.8,
                      linestyle=styles[index % len(styles)])
    for axis, name in zip(axes, ("discriminator loss", "generator loss")):
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _smooth(values: np.ndarray, window: int = 25) -> np.ndarray:
    """Running mean over the last ``window`` steps (shorter at the start), so trends read through noise."""
    if len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - window, 0)
    return (cumulative[idx] - cumulative[start]) / (idx - start)
