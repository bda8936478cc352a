"""ingest_images against a real S3 endpoint over HTTP and local Spark."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from conftest import settle
from imagepipe.dev import sample_data
from imagepipe.errors import InputError
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import IngestRecord, WindowRecord
from imagepipe.tables import current_snapshot
from spark_jobs import ingest_images

FAR_FUTURE = "2100-01-01T00:00:00+00:00"


def _jpeg(colour, size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def messy_bucket(s3_bucket):
    """Eight good images in two classes plus every kind of trouble a real bucket has."""
    client = s3_client()
    images = list(sample_data.generate(per_class=4, seed=7, classes=("beach", "forest")))
    sample_data.upload(client, s3_bucket, "raw", iter(images))
    good = images[0].content
    extra = {
        "raw/beach/copy_of_first.jpg": good,  # same bytes, same label: kept once
        "raw/beach/empty.jpg": b"",
        "raw/forest/notes.jpg": b"these are not pixels",
        "raw/forest/half.jpg": _jpeg((10, 200, 30))[:300],
        "raw/forest/tiny.png": _png((5, 5)),
        "raw/beach/conflict.jpg": _jpeg((1, 2, 3)),
        "raw/forest/conflict.jpg": _jpeg((1, 2, 3)),  # same bytes, two labels: both quarantined
        "raw/unlabelled.jpg": _jpeg((90, 90, 90)),
    }
    for key, body in extra.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    settle()
    return s3_bucket


def _png(size) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def _ingest(bucket, lake_root, run_id, *extra):
    # The messy bucket rejects 4 of its 15 labelled objects: above the default limit of 20%.
    ingest_images.main(
        ["--source-uri", f"s3://{bucket}/raw/", "--run-id", run_id, "--lake-root", lake_root,
         "--window-end", FAR_FUTURE, "--fetch-threads", "4", "--max-rejected-fraction", "0.5", *extra]
    )
    return Lake(lake_root).read_record(run_id, IngestRecord)


def test_ingest_keeps_good_images_once_and_quarantines_the_rest_with_reasons(spark, messy_bucket, lake_root):
    report = _ingest(messy_bucket, lake_root, "manual__one")

    images = spark.table(Lake(lake_root).images.identifier)
    assert images.count() == 8
    assert {row["label"]: row["count"] for row in images.groupBy("label").count().collect()} == {"beach": 4,
                                                                                                  "forest": 4}
    assert images.select("sha256").distinct().count() == 8
    quarantine = {row["key"]: row["reason"] for row in spark.table(Lake(lake_root).quarantine.identifier).collect()}
    assert set(quarantine) == {
        "raw/beach/empty.jpg", "raw/forest/notes.jpg", "raw/forest/half.jpg", "raw/forest/tiny.png",
        "raw/beach/conflict.jpg", "raw/forest/conflict.jpg",
    }
    assert quarantine["raw/beach/empty.jpg"].startswith("empty")
    assert quarantine["raw/forest/notes.jpg"].startswith("not an image")
    assert quarantine["raw/forest/half.jpg"].startswith(("truncated", "corrupt"))
    assert quarantine["raw/forest/tiny.png"].startswith("too small")
    assert quarantine["raw/beach/conflict.jpg"] == "conflicting labels: same content labelled beach, forest"
    assert report.ingested == 8
    assert report.unlabeled == 1
    assert report.duplicates == 1
    assert report.conflicts == 2
    cut_short = {reason: 1 for reason in report.rejected if reason in ("truncated", "corrupt")}
    assert report.rejected == {"empty": 1, "not an image": 1, "too small": 1, **cut_short}
    assert sum(report.rejected.values()) == 4
    assert report.fetched == 15
    assert report.bytes > 0 and report.objects_per_s > 0


def test_rerunning_the_same_run_gives_the_same_lake(spark, messy_bucket, lake_root):
    _ingest(messy_bucket, lake_root, "manual__one")
    before = sorted(row["key"] for row in spark.table(Lake(lake_root).images.identifier).select("key").collect())
    _ingest(messy_bucket, lake_root, "manual__one")
    after = sorted(row["key"] for row in spark.table(Lake(lake_root).images.identifier).select("key").collect())
    assert after == before
    assert spark.table(Lake(lake_root).quarantine.identifier).count() == 6


def test_a_later_watermark_run_takes_only_new_objects(spark, messy_bucket, lake_root):
    first_end = datetime.now(timezone.utc) + timedelta(seconds=1)
    ingest_images.main(
        ["--source-uri", f"s3://{messy_bucket}/raw/", "--run-id", "manual__one", "--lake-root", lake_root,
         "--window-end", first_end.isoformat(), "--max-rejected-fraction", "0.5"]
    )
    s3_client().put_object(Bucket=messy_bucket, Key="raw/forest/new.jpg", Body=_jpeg((0, 120, 0)))
    settle()
    report = _ingest(messy_bucket, lake_root, "manual__two")

    window = Lake(lake_root).read_record("manual__two", WindowRecord)
    # The first window ended at the second its listing started, before new.jpg was written.
    assert window.start == Lake(lake_root).read_record("manual__one", WindowRecord).end <= first_end.isoformat()
    assert report.ingested == 1
    assert spark.table(Lake(lake_root).images.identifier).count() == 9


def test_a_run_with_nothing_new_commits_nothing(spark, messy_bucket, lake_root):
    _ingest(messy_bucket, lake_root, "manual__one")
    lake = Lake(lake_root)
    snapshots = (current_snapshot(spark, lake.images), current_snapshot(spark, lake.quarantine))

    report = _ingest(messy_bucket, lake_root, "manual__two")

    assert report.ingested == 0 and report.images_snapshot == snapshots[0] is not None
    assert (current_snapshot(spark, lake.images), current_snapshot(spark, lake.quarantine)) == snapshots


def test_objects_outside_an_explicit_window_are_left_for_their_own_run(spark, messy_bucket, lake_root):
    report = _ingest(messy_bucket, lake_root, "manual__future", "--window-start", "2099-01-01T00:00:00Z")
    assert report.ingested == 0
    assert report.outside_window == report.listed


def test_identical_content_already_in_the_lake_is_not_taken_again(spark, messy_bucket, lake_root):
    _ingest(messy_bucket, lake_root, "manual__one")
    first = json.dumps(sorted(r["sha256"] for r in spark.table(Lake(lake_root).images.identifier).collect()))
    s3_client().copy_object(
        Bucket=messy_bucket, Key="raw/beach/another_copy.jpg",
        CopySource={"Bucket": messy_bucket, "Key": "raw/beach/copy_of_first.jpg"},
    )
    settle()
    report = _ingest(messy_bucket, lake_root, "manual__two", "--window-start", "2000-01-01T00:00:00Z")
    assert report.ingested == 0
    assert json.dumps(sorted(r["sha256"] for r in spark.table(Lake(lake_root).images.identifier).collect())) == first


def test_too_many_rejections_fail_the_run_but_keep_the_good_images_and_the_watermark(spark, messy_bucket, lake_root):
    with pytest.raises(InputError,
                       match=r"4 of 15 objects rejected \(27%\), above the allowed 20%: see their reasons in"):
        ingest_images.main(
            ["--source-uri", f"s3://{messy_bucket}/raw/", "--run-id", "manual__one", "--lake-root", lake_root,
             "--window-end", FAR_FUTURE]
        )
    assert spark.table(Lake(lake_root).images.identifier).count() == 8
    assert spark.table(Lake(lake_root).quarantine.identifier).count() == 6
    assert not Path(Lake(lake_root).watermark).exists()


def test_labels_from_a_manifest_instead_of_folders(spark, s3_bucket, lake_root, tmp_path):
    client = s3_client()
    for name, colour in (("a.jpg", (200, 0, 0)), ("b.jpg", (0, 200, 0)), ("c.jpg", (0, 0, 200))):
        client.put_object(Bucket=s3_bucket, Key=f"flat/{name}", Body=_jpeg(colour))
    settle()
    manifest = tmp_path / "labels.csv"
    manifest.write_text("key,label\na.jpg,red\nflat/b.jpg,green\n")
    ingest_images.main(
        ["--source-uri", f"s3://{s3_bucket}/flat/", "--run-id", "manual__m", "--lake-root", lake_root,
         "--window-end", FAR_FUTURE, "--label-manifest", str(manifest)]
    )
    rows = {row["key"]: row["label"] for row in spark.table(Lake(lake_root).images.identifier).collect()}
    assert rows == {"flat/a.jpg": "red", "flat/b.jpg": "green"}
    assert Lake(lake_root).read_record("manual__m", IngestRecord).unlabeled == 1


def test_a_missing_bucket_is_reported_in_one_line(s3_endpoint, lake_root):
    with pytest.raises(InputError, match=r"cannot list s3://no-such-bucket/x/: NoSuchBucket; check the bucket name"):
        ingest_images.main(["--source-uri", "s3://no-such-bucket/x/", "--run-id", "manual__one",
                            "--lake-root", lake_root, "--window-end", FAR_FUTURE])


def _encoded(image, image_format, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def test_every_accepted_format_and_mode_is_kept_with_its_mode_under_any_key(spark, s3_bucket, lake_root):
    import numpy as np

    rgb = Image.new("RGB", (40, 30), (10, 120, 200))
    frames = [Image.new("P", (32, 32), index) for index in (1, 2)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    objects = {
        "v/a/cmyk photo.jpg": (_encoded(rgb.convert("CMYK"), "JPEG"), "JPEG", "CMYK"),
        "v/a/sixteen-bit.png": (_encoded(Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16)), "PNG"),
                                "PNG", "I;16"),
        "v/a/alpha.png": (_encoded(rgb.convert("RGBA"), "PNG"), "PNG", "RGBA"),
        "v/b/animated palette.gif": (gif.getvalue(), "GIF", "P"),
        "v/b/scan.tiff": (_encoded(rgb.rotate(90, expand=True), "TIFF"), "TIFF", "RGB"),
        "v/b/bitmap.bmp": (_encoded(rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "BMP"), "BMP", "RGB"),
        "v/b/web.webp": (_encoded(rgb.resize((50, 30)), "WEBP"), "WEBP", "RGB"),
        "v/b/ünïcødé ñame.png": (_encoded(rgb.resize((41, 30)), "PNG"), "PNG", "RGB"),
    }
    for key, (body, _, _) in objects.items():
        s3_client().put_object(Bucket=s3_bucket, Key=key, Body=body)
    settle()
    ingest_images.main(["--source-uri", f"s3://{s3_bucket}/v/", "--run-id", "manual__formats", "--lake-root", lake_root,
                        "--window-end", FAR_FUTURE])

    images = spark.table(Lake(lake_root).images.identifier)
    rows = {row["key"]: (row["format"], row["mode"]) for row in images.collect()}
    assert rows == {key: (image_format, mode) for key, (_, image_format, mode) in objects.items()}
    stored = images.filter("key = 'v/b/animated palette.gif'").first()["content"]
    assert bytes(stored) == objects["v/b/animated palette.gif"][0]  # original bytes, not re-encoded


def test_an_object_modified_exactly_at_the_window_end_belongs_to_the_next_window(spark, s3_bucket, lake_root):
    client = s3_client()
    client.put_object(Bucket=s3_bucket, Key="raw/beach/edge.jpg", Body=_jpeg((250, 200, 120)))
    settle()
    at = client.head_object(Bucket=s3_bucket, Key="raw/beach/edge.jpg")["LastModified"]
    common = ["--source-uri", f"s3://{s3_bucket}/raw/", "--lake-root", lake_root]

    ingest_images.main([*common, "--run-id", "scheduled__before",
                        "--window-start", (at - timedelta(days=1)).isoformat(), "--window-end", at.isoformat()])
    ingest_images.main([*common, "--run-id", "scheduled__from", "--window-start", at.isoformat(),
                        "--window-end", (at + timedelta(days=1)).isoformat()])

    lake = Lake(lake_root)
    assert lake.read_record("scheduled__before", IngestRecord).ingested == 0
    assert lake.read_record("scheduled__from", IngestRecord).ingested == 1


@pytest.mark.slow
def test_a_run_killed_while_writing_leaves_the_lake_readable_and_its_retry_repairs_it(spark, s3_bucket, lake_root):
    import os
    import signal
    import subprocess
    import sys
    import time

    client = s3_client()
    sample_data.upload(client, s3_bucket, "raw",
                       sample_data.generate(per_class=5, seed=31, classes=("beach", "forest")))
    settle()
    common = ["--source-uri", f"s3://{s3_bucket}/raw/", "--lake-root", lake_root]
    ingest_images.main([*common, "--run-id", "manual__first", "--window-end", datetime.now(timezone.utc).isoformat()])
    sample_data.upload(client, s3_bucket, "raw",
                       sample_data.generate(per_class=40, seed=32, classes=("beach", "forest")))
    settle()
    end = datetime.now(timezone.utc).isoformat()
    second = [*common, "--run-id", "manual__second", "--window-end", end, "--fetch-threads", "1"]

    lake = Lake(lake_root)
    before = current_snapshot(spark, lake.images)
    data_dir = Path(lake_root) / "images" / "data"
    files_before = set(data_dir.rglob("*.parquet"))
    job = subprocess.Popen([sys.executable, "-m", "spark_jobs.ingest_images", *second], start_new_session=True,
                           cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        # Iceberg writes a commit's data files in place, then commits: kill the job once its first file is there.
        while job.poll() is None and not set(data_dir.rglob("*.parquet")) - files_before:
            time.sleep(0.02)
        killed_mid_write = job.poll() is None
        os.killpg(job.pid, signal.SIGKILL)
    finally:
        job.wait(timeout=60)
    assert killed_mid_write, "the job finished before it could be killed while writing"

    # The table is still at the first run's snapshot, whole: the killed run's files are in no commit.
    assert current_snapshot(spark, lake.images) == before
    images = spark.table(lake.images.identifier)
    first_keys = {row["key"] for row in images.filter("run_id = 'manual__first'").collect()}
    assert len(first_keys) == 10 and {row["key"] for row in images.collect()} == first_keys

    ingest_images.main(second)
    images = spark.table(lake.images.identifier)
    assert images.count() == images.select("sha256").distinct().count() == 90
    assert lake.read_record("manual__second", IngestRecord).ingested == 80
