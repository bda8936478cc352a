import io
import random

import numpy as np
import pytest
from PIL import Image

from conftest import exif_rotated_jpeg
from imagepipe.dev import sample_data
from imagepipe.errors import InputError
from imagepipe.featurizer import FeatureSpec
from imagepipe.preprocessing import (
    DEFAULT_STEPS,
    EXIF_ORIENTATION_TAG,
    is_upright,
    jpeg_exif_orientation,
    parse_steps,
    preprocess,
    to_rgb,
)

RED, BLUE = (220, 20, 20), (20, 20, 220)


def scene():
    """A drawn beach scene from the sample set: sky gradient, sea, sand, objects."""
    return sample_data.draw_image("beach", random.Random(0))


def reopened(image, image_format="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return Image.open(io.BytesIO(buffer.getvalue()))


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def mean_abs_error(image, reference) -> float:
    return float(np.abs(pixels(image) - pixels(reference)).mean())


# -- the spec -----------------------------------------------------------------------------------------------------


def test_default_is_exif_orientation_only():
    assert DEFAULT_STEPS == ("exif_transpose",)
    assert FeatureSpec(weights="random:0").steps == ("exif_transpose",)


def test_comma_string_and_list_give_the_same_canonical_steps():
    text = " exif_transpose, median:03 ,gaussian:1.50,autocontrast,equalize,pad_to_square"
    listed = ["exif_transpose", "median:3", "gaussian:1.5", "autocontrast", "equalize", "pad_to_square"]

    assert parse_steps(text) == parse_steps(listed) == tuple(listed)


@pytest.mark.parametrize("empty", ["", " ", []])
def test_empty_spec_means_no_steps(empty):
    assert parse_steps(empty) == ()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("sharpen", "unknown preprocessing step 'sharpen'; choose from exif_transpose, median:SIZE, gaussian:RADIUS, "
                    "autocontrast, equalize, pad_to_square"),
        ("median:3,,autocontrast", "unknown preprocessing step ''; choose from"),
        ("median", "preprocessing step 'median' needs its SIZE, e.g. median:3"),
        ("median:4", "preprocessing step 'median:4': SIZE must be an odd whole number from 3 to 15"),
        ("median:-3", "preprocessing step 'median:-3': SIZE must be an odd whole number from 3 to 15"),
        ("median:1", "preprocessing step 'median:1': SIZE must be an odd whole number from 3 to 15"),
        ("median:17", "preprocessing step 'median:17': SIZE must be an odd whole number from 3 to 15"),
        ("gaussian:0", "preprocessing step 'gaussian:0': RADIUS must be a number above 0 and at most 10"),
        ("gaussian:-1", "preprocessing step 'gaussian:-1': RADIUS must be a number above 0 and at most 10"),
        ("gaussian:nan", "preprocessing step 'gaussian:nan': RADIUS must be a number above 0 and at most 10"),
        ("gaussian:wide", "preprocessing step 'gaussian:wide': RADIUS must be a number above 0 and at most 10"),
        ("autocontrast:2", "preprocessing step 'autocontrast:2': autocontrast takes no parameter"),
        ("median:3,exif_transpose", "preprocessing step 'exif_transpose' must come first, once"),
        ("pad_to_square,autocontrast", "preprocessing step 'pad_to_square' must come last, once"),
    ],
)
def test_bad_spec_is_refused_in_one_line_naming_the_step_and_what_is_allowed(spec, message):
    with pytest.raises(InputError) as refused:
        parse_steps(spec)

    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


# -- each step on a real image ------------------------------------------------------------------------------------


def red_above_blue():
    image = Image.new("RGB", (40, 80), RED)
    image.paste(BLUE, (0, 40, 40, 80))
    return image


def test_exif_rotated_jpeg_comes_out_upright():
    content = exif_rotated_jpeg(red_above_blue())
    assert not is_upright(content)

    turned = preprocess(Image.open(io.BytesIO(content)), ["exif_transpose"])
    as_stored = preprocess(Image.open(io.BytesIO(content)), [])

    assert turned.size == (40, 80)
    assert mean_abs_error(turned, red_above_blue()) < 3
    assert as_stored.size == (80, 40)


def test_image_without_an_orientation_tag_is_upright():
    buffer = io.BytesIO()
    scene().save(buffer, format="JPEG")

    assert is_upright(buffer.getvalue())


def jpeg_with_exif(orientation, byte_order="<", **extra_tags) -> bytes:
    exif = Image.Exif()
    exif.endian = byte_order
    exif.update({0x010F: "Phone", 0x0110: "Model 7", **extra_tags, EXIF_ORIENTATION_TAG: orientation})
    buffer = io.BytesIO()
    scene().save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def pillow_orientation(content) -> int:
    return Image.open(io.BytesIO(content)).getexif().get(EXIF_ORIENTATION_TAG, 1)


@pytest.mark.parametrize("byte_order", ["<", ">"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_read_from_the_jpeg_header_agrees_with_pillow(orientation, byte_order):
    content = jpeg_with_exif(orientation, byte_order)

    assert jpeg_exif_orientation(content) == pillow_orientation(content) == orientation
    assert is_upright(content) is (orientation == 1)


def test_orientation_is_found_behind_an_xmp_segment():
    content = jpeg_with_exif(6)
    xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>"
    with_xmp = content[:2] + b"\xff\xe1" + (len(xmp) + 2).to_bytes(2, "big") + xmp + content[2:]

    assert jpeg_exif_orientation(with_xmp) == pillow_orientation(with_xmp) == 6


def test_values_exif_transpose_leaves_alone_count_as_upright():
    assert is_upright(jpeg_with_exif(0))
    assert is_upright(jpeg_with_exif(9))


def test_unusual_headers_are_left_to_pillow():
    """None means: not read here, ask Pillow; is_upright then still answers."""
    png = io.BytesIO()
    scene().save(png, format="PNG")
    rotated = jpeg_with_exif(8)
    tiff_start = rotated.index(b"Exif\0\0") + 6
    bad_byte_order = rotated[:tiff_start] + b"XX" + rotated[tiff_start + 2 :]
    padded = rotated[:2] + b"\xff" + rotated[2:]  # a fill byte before the first marker, which JPEG allows

    assert jpeg_exif_orientation(png.getvalue()) is None
    assert jpeg_exif_orientation(rotated[:30]) is None
    assert jpeg_exif_orientation(bad_byte_order) is None
    assert jpeg_exif_orientation(padded) is None
    assert is_upright(png.getvalue())
    assert not is_upright(padded)


def test_median_filter_removes_salt_and_pepper_noise():
    clean = scene()
    rng = np.random.default_rng(0)
    noisy = pixels(clean).copy()
    hit = rng.random(noisy.shape[:2])
    noisy[hit < 0.05] = 0
    noisy[hit > 0.95] = 255
    noisy = reopened(Image.fromarray(noisy.astype(np.uint8)))

    denoised = preprocess(noisy, ["median:3"])

    assert mean_abs_error(denoised, clean) < mean_abs_error(noisy, clean) / 1.5
    assert wrong_pixel_share(noisy, clean) > 0.07  # the 10% hit, less salt that fell on white
    assert wrong_pixel_share(denoised, clean) < wrong_pixel_share(noisy, clean) / 5  # left: thin lines it rounds off


def wrong_pixel_share(image, reference) -> float:
    """Share of pixels a channel of which is more than 100 grey levels off: the salt and the pepper."""
    return float((np.abs(pixels(image) - pixels(reference)).max(axis=2) > 100).mean())


def test_gaussian_blur_reduces_sensor_noise():
    clean = scene()
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 25, pixels(clean).shape)
    noisy = reopened(Image.fromarray((pixels(clean) + noise).clip(0, 255).astype(np.uint8)))

    denoised = preprocess(noisy, ["gaussian:1"])

    assert mean_abs_error(denoised, clean) < mean_abs_error(noisy, clean) * 0.75


def washed_out():
    """The scene squeezed into grey levels 100..160, as a faded scan."""
    return reopened(Image.fromarray((100 + pixels(scene()) * 60 / 255).astype(np.uint8)))


def test_autocontrast_stretches_each_channel_to_the_full_range():
    faded = washed_out()
    assert all(low >= 100 and high <= 160 for low, high in faded.getextrema())

    assert preprocess(faded, ["autocontrast"]).getextrema() == ((0, 255), (0, 255), (0, 255))


def distance_from_flat(image) -> float:
    """Largest gap, over the channels, between the cumulative share of pixels up to a level and that of a perfectly
    flat histogram (0 when every level is equally common)."""
    gaps = []
    for band in image.split():
        histogram = np.asarray(band.histogram(), dtype=np.float64)
        gaps.append(np.abs(np.cumsum(histogram) / histogram.sum() - np.arange(1, 257) / 256).max())
    return float(max(gaps))


def test_equalize_flattens_the_histogram_where_autocontrast_only_stretches_it():
    faded = washed_out()

    equalized = distance_from_flat(preprocess(faded, ["equalize"]))
    stretched = distance_from_flat(preprocess(faded, ["autocontrast"]))

    assert equalized < distance_from_flat(faded) / 3
    assert equalized < stretched / 2


def test_pad_to_square_keeps_the_whole_image_where_the_centre_crop_cuts_its_ends():
    wide = Image.new("RGB", (240, 80), (128, 128, 128))
    wide.paste(RED, (0, 0, 12, 80))  # markers at both ends
    wide.paste(BLUE, (228, 0, 240, 80))
    wide = reopened(wide)

    def backbone_input(steps):
        spec = FeatureSpec("resnet18", "random:0", 32, steps)
        return spec.preprocessing()(preprocess(wide, spec.steps)).numpy()  # normalised CHW

    def shows(tensor, colour_channel, other_channel) -> bool:
        return bool(((tensor[colour_channel] > 1.5) & (tensor[other_channel] < -1)).any())

    padded, cropped = backbone_input(["pad_to_square"]), backbone_input([])
    assert padded.shape == cropped.shape == (3, 32, 32)
    assert shows(padded, 0, 2) and shows(padded, 2, 0)  # red and blue ends both kept
    assert not shows(cropped, 0, 2) and not shows(cropped, 2, 0)  # the centre crop cut both off


def test_pad_to_square_pads_with_black_around_the_centred_image():
    padded = preprocess(reopened(Image.new("RGB", (60, 20), RED)), ["pad_to_square"])

    assert padded.size == (60, 60)
    assert padded.getpixel((30, 0)) == padded.getpixel((30, 59)) == (0, 0, 0)
    assert padded.getpixel((30, 30)) == RED


# -- every mode to RGB by one rule ----------------------------------------------------------------------------------


def test_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 128))  # half-transparent red

    rgb = to_rgb(reopened(rgba))

    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((1, 0)) == (255, 127, 127)


def test_transparent_grey_and_palette_pixels_are_white():
    la = Image.new("LA", (1, 1), (0, 0))
    palette = Image.new("P", (1, 1), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])

    assert to_rgb(reopened(la)).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(reopened(palette, transparency=0)).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(reopened(palette)).getpixel((0, 0)) == (0, 0, 0)


def test_opaque_palette_and_grey_keep_their_colours():
    palette = Image.new("P", (1, 1), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0])

    assert to_rgb(reopened(palette)).getpixel((0, 0)) == (255, 0, 0)
    assert to_rgb(reopened(Image.new("L", (1, 1), 77))).getpixel((0, 0)) == (77, 77, 77)


def test_16_bit_grey_is_scaled_to_8_bits_not_clipped():
    deep = Image.new("I;16", (4, 1))
    for x, value in enumerate([0, 1000, 128 * 257, 65535]):
        deep.putpixel((x, 0), value)
    opened = reopened(deep)
    assert opened.mode == "I;16"

    rgb = to_rgb(opened)

    assert [rgb.getpixel((x, 0)) for x in range(4)] == [(0, 0, 0), (3, 3, 3), (128, 128, 128), (255, 255, 255)]


def test_every_step_ends_in_rgb_whatever_the_mode():
    steps = parse_steps("exif_transpose,median:3,gaussian:1,autocontrast,equalize,pad_to_square")
    for mode in ("RGBA", "LA", "P", "L", "I;16", "CMYK"):
        image = reopened(scene().convert(mode) if mode != "I;16" else scene().convert("L").convert("I;16"), "TIFF")

        assert preprocess(image, steps).mode == "RGB", mode
