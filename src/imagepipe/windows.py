"""Ingest windows: the half-open LastModified interval [start, end) a run takes from the source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from imagepipe.errors import InputError

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
WATERMARK = "watermark"
ID_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def parse_timestamp(text: str) -> datetime:
    """An ISO-8601 timestamp; one without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp; write e.g. 2026-11-27T00:00:00+00:00") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __post_init__(self):
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InputError("window bounds need a time zone; parse them with parse_timestamp")
        if self.start > self.end:
            raise InputError(f"window start {self.start.isoformat()} is after its end {self.end.isoformat()}")

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def id(self) -> str:
        """Partition value naming the window, exact to the microsecond (manual runs end at their trigger instant);
        fixed width, so ids sort by start and their end parts compare as instants."""
        return f"{self.start.astimezone(timezone.utc):{ID_FORMAT}}_{self.end.astimezone(timezone.utc):{ID_FORMAT}}"

    @property
    def end_id(self) -> str:
        return self.id.split("_")[1]

    @classmethod
    def from_id(cls, window_id: str) -> Window:
        start, _, end = window_id.partition("_")
        parse = lambda text: datetime.strptime(text, ID_FORMAT).replace(tzinfo=timezone.utc)  # noqa: E731
        return cls(parse(start), parse(end))

    def to_json(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "id": self.id}

    @classmethod
    def from_json(cls, document: dict) -> Window:
        return cls(parse_timestamp(document["start"]), parse_timestamp(document["end"]))


def resolve_window(start: str, end: str, watermark: datetime | None, listed_at: datetime | None = None) -> Window:
    """The window named by a start (a timestamp or `watermark`) and an end timestamp.

    `watermark` starts where the last successful ingest ended, or at the epoch before any ingest; when that is
    already past the end, the window is empty (nothing new to take). An explicit start must precede the end.

    The window never reaches past `listed_at`, the whole second at which the source is listed: an object written
    after the listing gets a later LastModified, so it falls in the next window instead of being lost.
    """
    end_moment = parse_timestamp(end)
    if start == WATERMARK:
        start_moment = min(watermark or EPOCH, end_moment)
    else:
        start_moment = parse_timestamp(start)
        if start_moment >= end_moment:
            raise InputError(f"window start {start} is not before window end {end}; give a start earlier than the end")
    if listed_at is not None:
        end_moment = max(start_moment, min(end_moment, listed_at.replace(microsecond=0)))
    return Window(start_moment, end_moment)
