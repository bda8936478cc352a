import io

from PIL import Image

from conftest import exif_rotated_jpeg
from imagepipe import gallery


def _png(size, mode="RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (10, 200, 30, 0) if mode == "RGBA" else 40000).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_thumbnail_is_a_small_jpeg_of_the_image_turned_upright():
    upright = Image.new("RGB", (400, 200), (255, 0, 0))
    upright.paste((0, 0, 255), (0, 0, 200, 200))  # left half blue, right half red

    with Image.open(io.BytesIO(gallery.thumbnail(exif_rotated_jpeg(upright)))) as small:
        assert (small.format, small.mode, small.size) == ("JPEG", "RGB", (96, 48))
        left, right = small.getpixel((10, 24)), small.getpixel((86, 24))
    assert left[2] > 200 > left[0] and right[0] > 200 > right[2]


def test_a_thumbnail_keeps_small_images_small_and_any_mode_becomes_rgb():
    for content, size in ((_png((40, 30)), (40, 30)), (_png((300, 900), "I;16"), (32, 96))):
        with Image.open(io.BytesIO(gallery.thumbnail(content))) as small:
            assert (small.mode, small.size) == ("RGB", size)


def test_correct_examples_cover_every_class_while_they_fit_else_one_each_for_the_lowest_f1():
    few = {"b": {"f1": 0.9, "support": 4}, "a": {"f1": 0.5, "support": 4}, "z": {"f1": None, "support": 0}}
    assert gallery.correct_quota(few) == (["a", "b"], gallery.CORRECT_PER_CLASS)

    many = {f"c{index:03d}": {"f1": 1 - index / 1000, "support": 3} for index in range(400)}
    classes, each = gallery.correct_quota(many)
    assert each == 1 and len(classes) == gallery.MAX_CORRECT
    assert classes[:2] == ["c399", "c398"]  # the lowest F1 first

    some = {f"c{index:02d}": {"f1": 0.5, "support": 3} for index in range(25)}
    assert gallery.correct_quota(some) == (sorted(some), 2)
