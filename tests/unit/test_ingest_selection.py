from datetime import datetime, timezone

import pytest

from imagepipe.ingest import label_for_key, select_objects
from imagepipe.object_store import ObjectInfo
from imagepipe.windows import Window

UTC = timezone.utc
WINDOW = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
INSIDE = datetime(2026, 1, 1, 12, tzinfo=UTC)


def listed(key: str, last_modified: datetime = INSIDE) -> ObjectInfo:
    return ObjectInfo(key=key, etag=f"etag-{key}", size=100, last_modified=last_modified)


@pytest.mark.parametrize(
    "key, prefix, label",
    [
        ("images/beach/a.jpg", "images/", "beach"),
        # s3://bucket/images (no trailing slash) lists with prefix "images".
        ("images/beach/a.jpg", "images", "beach"),
        # The first folder under the prefix is the label, however deep the file lies.
        ("images/beach/2024/july/a.jpg", "images/", "beach"),
        ("data/v2/images/night_sky/x.png", "data/v2/images/", "night_sky"),
        # A source at the bucket root.
        ("forest/a.jpg", "", "forest"),
    ],
)
def test_label_is_first_folder_under_prefix(key, prefix, label):
    assert label_for_key(key, prefix) == label


@pytest.mark.parametrize(
    "key, prefix",
    [
        ("images/a.jpg", "images/"),  # directly in the prefix: no label folder
        ("images/beach/", "images/"),  # folder marker
        ("images/beach/sub/", "images/"),  # nested folder marker
        ("images/", "images/"),  # the prefix itself
        ("other/beach/a.jpg", "images/"),  # outside the prefix
        ("a.jpg", ""),  # at the bucket root, no folder
    ],
)
def test_key_without_a_label_folder_has_no_label(key, prefix):
    assert label_for_key(key, prefix) is None


def test_sibling_folder_sharing_the_prefix_text_has_no_label():
    # S3 lists every key starting with "images", including those of the sibling folder images_old/.
    assert label_for_key("images_old/beach/a.jpg", "images") is None


def test_select_objects_keeps_labelled_objects_in_the_window_in_listing_order():
    beach = listed("images/beach/a.jpg")
    forest = listed("images/forest/b.png")
    beach_late = listed("images/beach/c.jpg", datetime(2026, 1, 1, 23, 59, tzinfo=UTC))

    selection = select_objects([beach, forest, beach_late], "images/", WINDOW)

    assert selection.candidates == [(beach, "beach"), (forest, "forest"), (beach_late, "beach")]
    assert (selection.listed, selection.outside_window, selection.unlabeled) == (3, 0, 0)


def test_select_objects_counts_what_it_leaves_out():
    at_start = listed("images/beach/start.jpg", WINDOW.start)
    at_end = listed("images/beach/end.jpg", WINDOW.end)  # the end is outside the half-open window
    before = listed("images/beach/old.jpg", datetime(2025, 12, 31, tzinfo=UTC))
    unlabelled = listed("images/loose.jpg")
    unlabelled_and_late = listed("images/late.jpg", datetime(2026, 2, 1, tzinfo=UTC))
    folder_marker = listed("images/beach/")

    selection = select_objects([at_start, at_end, before, unlabelled, unlabelled_and_late, folder_marker],
                               "images/", WINDOW)

    assert selection.candidates == [(at_start, "beach")]
    # Folder markers are not objects to a user, so they are not counted as listed.
    assert selection.listed == 5
    # The window is judged first: a late unlabelled object counts as outside the window.
    assert selection.outside_window == 3
    assert selection.unlabeled == 1


def test_select_objects_of_empty_listing_selects_nothing():
    selection = select_objects([], "images/", WINDOW)

    assert selection.candidates == []
    assert (selection.listed, selection.outside_window, selection.unlabeled) == (0, 0, 0)


def test_select_objects_in_empty_window_selects_nothing():
    empty = Window(WINDOW.end, WINDOW.end)

    selection = select_objects([listed("images/beach/a.jpg", WINDOW.end)], "images/", empty)

    assert selection.candidates == []
    assert selection.outside_window == 1


def test_manifest_in_csv_and_json_lines_gives_labels_by_full_or_relative_key():
    from imagepipe.ingest import manifest_labeler, parse_manifest

    csv_labels = parse_manifest("key,label\nimages/a.jpg,cat\nb.jpg,dog\n", "labels.csv")
    jsonl_labels = parse_manifest('{"key": "images/a.jpg", "label": "cat"}\n\n{"key": "b.jpg", "label": "dog"}\n',
                                  "l.jsonl")
    assert csv_labels == jsonl_labels == {"images/a.jpg": "cat", "b.jpg": "dog"}
    labeler = manifest_labeler(csv_labels, "images")
    assert [labeler(key) for key in ("images/a.jpg", "images/b.jpg", "images/c.jpg")] == ["cat", "dog", None]


@pytest.mark.parametrize(
    "text, name, message",
    [
        ("path,label\nx,y\n", "m.csv", "needs a header with key and label columns"),
        ("key,label\nx,\n", "m.csv", "line 2 lacks a key or a label"),
        ('{"key": "x", "label": "y"}\nnot json\n', "m.jsonl", "line 2 is not JSON"),
        ("[1, 2]\n", "m.jsonl", "line 1 is not an object with key and label"),
        ("key,label\n", "m.txt", "must be .csv, .jsonl or .json"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_line(text, name, message):
    from imagepipe.errors import InputError
    from imagepipe.ingest import parse_manifest

    with pytest.raises(InputError, match=message):
        parse_manifest(text, name)
