import pytest

from imagepipe.errors import InputError
from imagepipe.training import check_class_counts


def test_enough_images_in_every_class_passes():
    # Returns nothing; not raising is the outcome.
    assert check_class_counts({"beach": 10, "forest": 5}, min_per_class=5) is None


def test_no_classes_is_refused():
    with pytest.raises(InputError, match="^training needs at least two classes with images; found none$"):
        check_class_counts({}, min_per_class=1)


def test_single_class_is_refused_naming_it():
    with pytest.raises(InputError, match="^training needs at least two classes with images; found beach=40$"):
        check_class_counts({"beach": 40}, min_per_class=1)


def test_classes_below_minimum_are_named_in_label_order():
    with pytest.raises(InputError) as raised:
        check_class_counts({"snowfield": 2, "beach": 10, "forest": 0, "night_sky": 5}, min_per_class=5)

    assert str(raised.value) == (
        "classes below min_examples_per_class=5 in the training split: forest=0, snowfield=2; "
        "add images or lower the minimum"
    )
