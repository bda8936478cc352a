import io
import random

import pytest
from PIL import Image

from imagepipe.dev.sample_data import draw_image, generate
from imagepipe.images import validate_image


def test_generate_yields_per_class_images_of_every_class_in_order():
    images = list(generate(per_class=3, seed=0))

    assert [(image.label, image.name.rsplit(".", 1)[0]) for image in images] == [
        (label, f"{label}_{index:04d}") for label in ("beach", "forest", "night_sky", "snowfield") for index in range(3)
    ]


def test_generated_images_are_jpeg_or_png_as_their_names_say():
    for image in generate(per_class=5, seed=1):
        expected_format = {"jpg": "JPEG", "png": "PNG"}[image.name.rsplit(".", 1)[1]]
        with Image.open(io.BytesIO(image.content)) as decoded:
            assert decoded.format == expected_format, image.name
            assert 120 <= decoded.width <= 260 and 120 <= decoded.height <= 260, image.name


def test_generated_images_pass_ingest_validation():
    checks = [validate_image(image.content) for image in generate(per_class=3, seed=2)]

    assert [check.reason for check in checks] == [None] * 12


def drawn_layout(images) -> list[tuple[str, str, tuple[int, int]]]:
    """What the seeded generator chooses for each image: name, format and size."""
    layout = []
    for image in images:
        with Image.open(io.BytesIO(image.content)) as decoded:
            layout.append((image.name, decoded.format, decoded.size))
    return layout


def test_generate_chooses_the_same_names_formats_and_sizes_for_a_seed():
    assert drawn_layout(generate(per_class=3, seed=5)) == drawn_layout(generate(per_class=3, seed=5))


def test_different_seeds_choose_different_sizes():
    sizes = [size for _, _, size in drawn_layout(generate(per_class=3, seed=5))]
    other_sizes = [size for _, _, size in drawn_layout(generate(per_class=3, seed=6))]

    assert sizes != other_sizes


def test_generate_gives_the_same_bytes_for_a_seed():
    first = [image.content for image in generate(per_class=2, seed=5)]
    second = [image.content for image in generate(per_class=2, seed=5)]

    assert first == second


def test_generate_can_take_a_subset_of_classes():
    images = list(generate(per_class=2, seed=0, classes=("forest", "snowfield")))

    assert [image.label for image in images] == ["forest", "forest", "snowfield", "snowfield"]


def test_unknown_class_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError,
                       match="unknown sample class 'desert'; choose one of beach, forest, night_sky, snowfield"):
        draw_image("desert", random.Random(0))

