"""Images without TensorFlow: image files decoded with Pillow, and the transform of `_pipelines`
(channels, bilinear resize, scaling, rows for sequences) in numpy, as the PyDataset engine and the
TF-free paths of `recipes.preprocessing` use them.

The resize is `tf.image.resize`'s bilinear (half-pixel centres, no antialiasing) written in numpy:
the same weights in float32, so the two engines give the same values to within float rounding. A
JPEG at least twice the size asked is decoded at 1/2, 1/4 or 1/8 scale (`Image.draft`, libjpeg's
DCT scaling, as the tf.data engine's `decode_jpeg(ratio=)`), then resized.
"""

from __future__ import annotations

import numpy as np

GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)  # tf.image.rgb_to_grayscale's


class UnreadableImage(ValueError):
    """An image file that cannot be decoded; the message (one line) names it."""


# ------------------------------------------------------------------------- decoding


def decode(path, channels: int = 0) -> np.ndarray:
    """Decodes an image file to uint8 `(H, W, C)`: `channels` 1 or 3, or 0 for its own (1 gray,
    2 gray and alpha, 3 colour, 4 colour and alpha), as `tf.io.decode_image` gives them.

    Raises:
        UnreadableImage: one line naming the file and the decoder's reason.
    """
    return _decoded(path, channels, None)


def decode_resized(path, shape) -> np.ndarray:
    """Decodes an image file to uint8 `shape` `(h, w, channels)`: bilinear, rounded to whole values,
    a large JPEG decoded at a reduced scale first (libjpeg's DCT scaling).

    Raises:
        UnreadableImage: one line naming the file and the decoder's reason.
    """
    h, w, channels = shape
    image = _decoded(path, channels, (w, h))
    if image.shape[:2] == (h, w):
        return image
    return np.round(resize_bilinear(image.astype(np.float32), (h, w))).astype(np.uint8)


def _decoded(path, channels, draft_size):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if draft_size is not None and im.format == "JPEG":
                # the largest of 1/8, 1/4, 1/2 that keeps both sides at least the size asked
                im.draft("L" if channels == 1 else "RGB", draft_size)
            return _pixels(im, channels)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        reason = " ".join(str(e).split()).rstrip(".") or type(e).__name__
        if isinstance(e, UnidentifiedImageError):
            reason = "not a JPEG, PNG, GIF or BMP image"
        raise UnreadableImage(f"Could not decode the image {path}: {reason}. Remove or replace it.") from None


def _pixels(im, channels):
    """A PIL image -> uint8 `(H, W, C)` with `channels` (0: its own, as TensorFlow counts them)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit gray: the high byte, as TensorFlow's uint8
        gray = (np.asarray(im, np.uint32) >> 8).clip(0, 255).astype(np.uint8)[..., None]
        return np.repeat(gray, 3, axis=-1) if channels == 3 else gray
    if channels == 0:
        own = {"1": "L", "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}.get(im.mode)
        if own is None:  # palette, CMYK, YCbCr...: colour, with alpha if it has transparency
            own = "RGBA" if im.mode in ("PA", "RGBa", "LA") or "transparency" in im.info else "RGB"
        mode = own
    else:
        mode = "L" if channels == 1 else "RGB"
    image = np.asarray(im.convert(mode) if im.mode != mode else im, np.uint8)
    return image[..., None] if image.ndim == 2 else image


# ------------------------------------------------------------------------- transforms


def _weights(in_size: int, out_size: int):
    """Source rows (or columns) and weights of a bilinear resize with half-pixel centres, as
    TensorFlow's `ResizeBilinear` computes them (float32)."""
    scale = np.float32(in_size) / np.float32(out_size)
    where = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(where)
    lower = np.maximum(floor, 0).astype(np.intp)
    upper = np.minimum(np.ceil(where), in_size - 1).astype(np.intp)
    return lower, upper, (where - floor).astype(np.float32)


def resize_bilinear(x: np.ndarray, size) -> np.ndarray:
    """`x` float32 `(..., H, W, C)` resized to `size` `(h, w)` as `tf.image.resize(x, size)` does."""
    h, w = size
    top, bottom, y_lerp = _weights(x.shape[-3], h)
    left, right, x_lerp = _weights(x.shape[-2], w)
    x_lerp = x_lerp[:, None]

    def across(rows):  # each row resized along its width
        first = rows[..., left, :]
        return first + (rows[..., right, :] - first) * x_lerp

    upper, lower = across(x[..., top, :, :]), across(x[..., bottom, :, :])
    return upper + (lower - upper) * y_lerp[:, None, None]


def image_transform(raw_max, value_range, native_channels, *, image_size, channels, as_sequence):
    """`_pipelines._image_transform` in numpy: raw images (a batch or one, `(..., H, W, C)`, values in
    `[0, raw_max]`) -> float32 images in `value_range`, resized, with `channels` channels."""
    low, high = (np.float32(v) for v in value_range)
    scale = np.float32((value_range[1] - value_range[0]) / raw_max)

    def fn(x):
        x = np.asarray(x, np.float32)
        if channels != native_channels:
            x = np.repeat(x, 3, axis=-1) if channels == 3 else (x @ GRAY_WEIGHTS)[..., None]
        if image_size is not None and tuple(x.shape[-3:-1]) != tuple(image_size):
            x = resize_bilinear(x, image_size)
        x = np.clip(x * scale + low, low, high)
        return as_rows(x) if as_sequence else x

    return fn


def scaler(value_range, as_sequence):
    """`_files.scaler` in numpy: whole values 0..255 (uint8 or float32) -> float32 in `value_range`."""
    low, high = value_range
    scale = np.float32((high - low) / 255.0)
    exact = np.float32(255) * scale + np.float32(low) <= np.float32(high)

    def fn(x):
        x = np.asarray(x, np.float32) * scale
        if low:
            x += np.float32(low)
        if not exact:
            np.minimum(x, np.float32(high), out=x)
        return as_rows(x) if as_sequence else x

    return fn


def as_rows(x: np.ndarray) -> np.ndarray:
    """Images `(..., H, W, C)` as sequences of rows `(..., H, W*C)`."""
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])
