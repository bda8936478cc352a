from datetime import datetime, timedelta, timezone

import pytest

from imagepipe.errors import InputError
from imagepipe.windows import EPOCH, WATERMARK, Window, parse_timestamp, resolve_window

UTC = timezone.utc


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-27T10:30:00Z", utc(2026, 11, 27, 10, 30)),
        ("2026-11-27T10:30:00+00:00", utc(2026, 11, 27, 10, 30)),
        # No zone given: taken as UTC, not as the machine's local time.
        ("2026-11-27T10:30:00", utc(2026, 11, 27, 10, 30)),
        # Another zone is converted to the same instant in UTC.
        ("2026-11-27T10:30:00+02:00", utc(2026, 11, 27, 8, 30)),
        ("  2026-11-27T10:30:00Z\n", utc(2026, 11, 27, 10, 30)),
        ("2026-11-27", utc(2026, 11, 27)),
    ],
)
def test_parse_timestamp_gives_the_instant_in_utc(text, expected):
    parsed = parse_timestamp(text)

    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01T00:00:00Z", WATERMARK])
def test_parse_timestamp_rejects_non_timestamps_with_an_example(text):
    with pytest.raises(ValueError, match="is not an ISO-8601 timestamp; write e.g. 2026-11-27T00:00:00"):
        parse_timestamp(text)


def test_window_with_start_after_end_is_refused():
    with pytest.raises(InputError,
                       match="window start 2026-01-02T00:00:00\\+00:00 is after its end 2026-01-01T00:00:00\\+00:00"):
        Window(utc(2026, 1, 2), utc(2026, 1, 1))


def test_window_is_half_open():
    window = Window(utc(2026, 1, 1), utc(2026, 1, 2))

    assert window.contains(utc(2026, 1, 1))
    assert window.contains(utc(2026, 1, 1, 23, 59, 59, 999999))
    assert not window.contains(utc(2026, 1, 2))
    assert not window.contains(utc(2025, 12, 31, 23, 59, 59, 999999))


def test_empty_window_is_allowed_and_contains_nothing():
    # An empty window is how a watermark run says "nothing new to take".
    window = Window(utc(2026, 1, 1), utc(2026, 1, 1))

    assert not window.contains(utc(2026, 1, 1))


def test_window_id_names_start_and_end_in_compact_utc():
    window = Window(utc(2026, 1, 2, 3, 4, 5), utc(2026, 11, 27, 23, 0, 59))

    assert window.id == "20260102T030405.000000Z_20261127T230059.000000Z"


def test_window_id_round_trips():
    window = Window(utc(2026, 1, 2, 3, 4, 5), utc(2026, 11, 27, 23, 0, 59))

    assert Window.from_id("20260102T030405.000000Z_20261127T230059.000000Z") == window


def test_window_ids_sort_by_start_then_end():
    chronological = [
        Window(utc(2025, 12, 31, 23), utc(2026, 1, 1)),
        Window(utc(2026, 1, 1), utc(2026, 1, 1, 9)),
        Window(utc(2026, 1, 1), utc(2026, 1, 10)),
        Window(utc(2026, 1, 2), utc(2026, 1, 3)),
        Window(utc(2026, 10, 1), utc(2026, 10, 2)),
    ]

    assert sorted(window.id for window in reversed(chronological)) == [window.id for window in chronological]


def test_window_json_round_trips():
    window = Window(utc(2026, 1, 2, 3, 4, 5), utc(2026, 1, 3))

    document = window.to_json()

    assert document == {
        "start": "2026-01-02T03:04:05+00:00",
        "end": "2026-01-03T00:00:00+00:00",
        "id": "20260102T030405.000000Z_20260103T000000.000000Z",
    }
    assert Window.from_json(document) == window


def test_distinct_sub_second_windows_get_distinct_ids():
    # Manual runs end at their trigger time, which has microseconds: two runs triggered within one second.
    first = Window(utc(2026, 1, 1, 12, 0, 0, 200_000), utc(2026, 1, 1, 12, 0, 0, 600_000))
    second = Window(utc(2026, 1, 1, 12, 0, 0, 600_000), utc(2026, 1, 1, 12, 0, 0, 900_000))

    assert first.id != second.id


def test_resolve_window_with_explicit_start():
    window = resolve_window("2026-01-01T00:00:00Z", "2026-01-02T00:00:00+00:00", watermark=utc(2025, 6, 1))

    # An explicit start ignores the watermark.
    assert window == Window(utc(2026, 1, 1), utc(2026, 1, 2))


def test_resolve_window_from_watermark_starts_where_last_ingest_ended():
    window = resolve_window(WATERMARK, "2026-01-02T00:00:00Z", watermark=utc(2026, 1, 1, 6))

    assert window == Window(utc(2026, 1, 1, 6), utc(2026, 1, 2))


def test_resolve_window_from_watermark_before_any_ingest_starts_at_epoch():
    window = resolve_window(WATERMARK, "2026-01-02T00:00:00Z", watermark=None)

    assert window.start == utc(1970, 1, 1)
    assert window.start == EPOCH
    assert window.end == utc(2026, 1, 2)


def test_resolve_window_from_watermark_past_the_end_is_empty():
    window = resolve_window(WATERMARK, "2026-01-02T00:00:00Z", watermark=utc(2026, 3, 1))

    assert window == Window(utc(2026, 1, 2), utc(2026, 1, 2))
    assert not window.contains(utc(2026, 1, 2))


@pytest.mark.parametrize("start", ["2026-01-02T00:00:00Z", "2026-01-05T00:00:00Z"])
def test_resolve_window_refuses_explicit_start_not_before_end(start):
    with pytest.raises(InputError, match=f"window start {start} is not before window end 2026-01-02T00:00:00Z"):
        resolve_window(start, "2026-01-02T00:00:00Z", watermark=None)


def test_resolve_window_refuses_unparseable_end():
    with pytest.raises(ValueError, match="'tomorrow' is not an ISO-8601 timestamp"):
        resolve_window(WATERMARK, "tomorrow", watermark=None)


def test_a_window_never_reaches_past_the_listing_second():
    listed_at = utc(2026, 1, 1, 12, 0, 0) + timedelta(microseconds=700_000)

    assert resolve_window(WATERMARK, "2100-01-01T00:00:00Z", None, listed_at=listed_at).end == utc(2026, 1, 1, 12)
    # An end already in the past is kept as it is.
    assert resolve_window(WATERMARK, "2025-01-01T00:00:00Z", None, listed_at=listed_at).end == utc(2025, 1, 1)
    # A window starting after the listing is empty rather than inverted.
    future = resolve_window("2099-01-01T00:00:00Z", "2100-01-01T00:00:00Z", None, listed_at=listed_at)
    assert future.start == future.end == utc(2099, 1, 1)
