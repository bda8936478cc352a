import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image

from imagepipe.images import ValidationBounds, validate_image


def encoded(image_format: str, size=(64, 48), mode="RGB", **options) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "orange" if mode == "RGB" else 1).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def noisy(image_format: str, size=(200, 200)) -> bytes:
    # Noise defeats compression, so the file is long enough to cut in the middle of its pixel data.
    buffer = io.BytesIO()
    Image.effect_noise(size, 50).convert("RGB").save(buffer, format=image_format)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with (almost) no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_accepted_formats_report_format_and_size(image_format):
    # validate_image sees only bytes, never a file name: the format it reports comes from the content.
    check = validate_image(encoded(image_format, size=(64, 48)))

    assert check.accepted
    assert check.reason is None
    assert (check.format, check.width, check.height) == (image_format, 64, 48)


def test_multi_picture_jpeg_is_reported_as_jpeg():
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, format="MPO", save_all=True,
                                           append_images=[Image.new("RGB", (32, 32), "blue")])

    check = validate_image(buffer.getvalue())

    assert check.accepted
    assert check.format == "JPEG"


@pytest.mark.parametrize("image_format", ["PPM", "TGA", "ICO", "PCX"])
def test_decodable_but_unsupported_format_is_rejected(image_format):
    check = validate_image(encoded(image_format, size=(32, 32)))

    assert not check.accepted
    assert check.reason == f"unsupported format: {image_format}"
    assert check.format is None


def test_zero_bytes_are_rejected_as_empty():
    check = validate_image(b"")

    assert not check.accepted
    assert check.reason == "empty: zero bytes"


@pytest.mark.parametrize("content", [b"hello, not an image", b"%PDF-1.7\n" + b"x" * 200, bytes(1000)])
def test_non_image_bytes_are_rejected(content):
    check = validate_image(content)

    assert not check.accepted
    assert check.reason == "not an image: content is no known image format"


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
@pytest.mark.parametrize("kept_fraction", [0.3, 0.9])
def test_truncated_file_is_rejected_as_truncated(image_format, kept_fraction):
    whole = noisy(image_format)

    check = validate_image(whole[: int(len(whole) * kept_fraction)])

    assert not check.accepted
    assert check.reason.startswith("truncated: ")


def test_corrupt_pixel_data_is_rejected_as_corrupt():
    damaged = bytearray(noisy("PNG", size=(64, 64)))
    pixel_data = damaged.find(b"IDAT") + 20
    damaged[pixel_data : pixel_data + 40] = bytes(byte ^ 0xFF for byte in damaged[pixel_data : pixel_data + 40])

    check = validate_image(bytes(damaged))

    assert not check.accepted
    assert check.reason.startswith("corrupt: ")


def test_sha256_is_that_of_the_bytes_whether_accepted_or_not():
    image = encoded("PNG")
    garbage = b"not an image"

    assert validate_image(image).sha256 == hashlib.sha256(image).hexdigest()
    assert validate_image(garbage).sha256 == hashlib.sha256(garbage).hexdigest()
    assert validate_image(b"").sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", [(15, 100), (100, 15)])
def test_image_with_a_side_below_minimum_is_too_small(size):
    check = validate_image(encoded("PNG", size=size), ValidationBounds(min_side=16))

    assert check.reason == f"too small: {size[0]}x{size[1]} below 16 pixels"


@pytest.mark.parametrize("size", [(101, 20), (20, 101)])
def test_image_with_a_side_above_maximum_is_too_large(size):
    check = validate_image(encoded("PNG", size=size), ValidationBounds(min_side=16, max_side=100))

    assert check.reason == f"too large: {size[0]}x{size[1]} above 100 pixels"


def test_sides_exactly_at_the_bounds_are_accepted():
    bounds = ValidationBounds(min_side=16, max_side=100)

    assert validate_image(encoded("PNG", size=(16, 100)), bounds).accepted
    assert validate_image(encoded("PNG", size=(100, 16)), bounds).accepted


def test_default_bounds_refuse_tiny_images():
    assert validate_image(encoded("PNG", size=(8, 8))).reason == "too small: 8x8 below 16 pixels"


def test_too_large_is_judged_from_the_header_without_decoding():
    # Only a header and a token of pixel data: judged too large before any decode could fail on the data.
    check = validate_image(png_claiming(9000, 16))

    assert check.reason == "too large: 9000x16 above 8192 pixels"


def test_image_over_max_pixels_is_a_decompression_bomb():
    check = validate_image(encoded("PNG", size=(100, 100)), ValidationBounds(max_pixels=5000))

    assert check.reason == "decompression bomb: 100x100 exceeds 5000 pixels"


def test_image_exactly_at_max_pixels_is_accepted():
    assert validate_image(encoded("PNG", size=(100, 50)), ValidationBounds(max_pixels=5000)).accepted


@pytest.mark.parametrize("width, height", [(9000, 9000), (10000, 10000), (20000, 20000)])
def test_header_claiming_huge_dimensions_is_rejected_as_a_bomb(width, height):
    # Below, between and above Pillow's own warning and error limits (about 89 and 179 megapixels).
    check = validate_image(png_claiming(width, height))

    assert not check.accepted
    assert check.reason.startswith("decompression bomb: ")


def test_max_pixels_above_pillows_default_limit_is_honoured():
    # 1-bit pixels keep a real 10000x10000 image small in memory and on disk.
    image = encoded("PNG", size=(10000, 10000), mode="1")

    check = validate_image(image, ValidationBounds(max_side=20000, max_pixels=200_000_000))

    assert check.accepted
    assert (check.width, check.height) == (10000, 10000)
