"""The studio's PNG writer: strips deflated on several threads, read back pixel for pixel."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from enfoads.core import pngfile
from enfoads.testing.faces import astronaut_rgb


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()  # zlib checks the stream's Adler-32 here: a wrong join fails
    return image


@pytest.mark.parametrize(
    "mode, shape",
    [
        ("RGB", (1024, 1024, 3)),
        ("RGB", (1920, 1080, 3)),  # 9:16, rows not a multiple of the strips
        ("RGBA", (301, 257, 4)),
        ("L", (130, 70)),
        ("RGB", (1, 1, 3)),
        ("RGB", (63, 5, 3)),  # fewer rows than one strip: a single stream
    ],
)
def test_every_pixel_comes_back(mode, shape):
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    data = pngfile.encode(Image.fromarray(pixels, mode), {})
    back = decoded(data)
    assert back.mode == mode
    assert np.array_equal(np.asarray(back), pixels)


def test_a_photo_is_split_in_strips_and_stays_as_small_as_pillows():
    photo = Image.fromarray(astronaut_rgb()).resize((1024, 1024), Image.Resampling.BICUBIC)
    pixels = np.asarray(photo).reshape(1024, -1)
    stream = pngfile.idat(pixels, 3, parts=4)
    # four strips: three byte-aligned sync points (00 00 ff ff) inside the deflate stream
    assert stream.count(b"\x00\x00\xff\xff") >= 3
    assert zlib.decompress(stream)[: 1 + 1024 * 3][0] == pngfile.UP
    data = pngfile.encode(photo, {})
    assert np.array_equal(np.asarray(decoded(data)), np.asarray(photo))
    pillow = io.BytesIO()
    photo.save(pillow, "PNG", compress_level=3)
    assert len(data) < 1.1 * len(pillow.getvalue())


def test_text_chunks_carry_the_ai_label_in_utf8():
    text = {"ai_generated": "true", "prompt": "aceite de oliva, café y jamón"}
    image = decoded(pngfile.encode(Image.new("RGB", (8, 8), "white"), text))
    assert image.text == text
    # a lone surrogate (no valid UTF-8) never stops a result from being stored
    image = decoded(pngfile.encode(Image.new("RGB", (8, 8)), {"prompt": "caf\udce9"}))
    assert image.text == {"prompt": "caf?"}


def test_a_huge_image_goes_through_pillows_streaming_writer(monkeypatch):
    """Past MAX_STRIP_PIXELS the strips (about four times the image in memory) are not used."""
    monkeypatch.setattr(pngfile, "MAX_STRIP_PIXELS", 64 * 64 - 1)
    called = []
    monkeypatch.setattr(pngfile, "idat", lambda *a: called.append(a))
    pixels = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    back = decoded(pngfile.encode(Image.fromarray(pixels), {"a": "b"}))
    assert not called and np.array_equal(np.asarray(back), pixels) and back.text == {"a": "b"}


def test_other_modes_go_through_pillow():
    image = Image.new("P", (16, 16))
    image.putpalette([0, 0, 0, 255, 0, 0] * 128)
    back = decoded(pngfile.encode(image, {"a": "b"}))
    assert back.mode == "P" and back.text == {"a": "b"}


def test_a_forked_child_encodes_with_threads_of_its_own():
    """A worker forked after the parent encoded (its pool's threads stay behind) still
    finishes: the child makes its own pool instead of waiting on threads it does not have."""
    import multiprocessing

    image = Image.fromarray(np.zeros((512, 512, 3), np.uint8))
    pngfile.encode(image, {})  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        size = pool.apply_async(_encoded_size, ()).get(timeout=60)
    assert size > 0


def _encoded_size() -> int:
    return len(pngfile.encode(Image.fromarray(np.zeros((512, 512, 3), np.uint8)), {}))
