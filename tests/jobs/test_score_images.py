"""score_images on local Spark against a real S3 endpoint: a champion trained by the pipeline's own jobs labels a
prefix of unlabelled images. The lake is on that endpoint too (s3a://), as in production: every job of the path
reads and writes its Iceberg tables there. The champion's features come from a timm backbone (a small MobileNetV3,
seeded random weights): extract, train, evaluate, promote and scoring all take it. Scoring judges each batch's
drift from the champion's reference: images drawn like the training set raise no alarm, a shifted batch does."""

from __future__ import annotations

import io

import pytest

from conftest import settle
from imagepipe.dev import sample_data
from imagepipe.errors import InputError
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import FeaturesRecord, ScoringRecord
from imagepipe.registry import Registry
from imagepipe.registry.versions import Versions
from pipeline_runs import FAR_FUTURE, TRAIN
from spark_jobs import evaluate_model, extract_features, ingest_images, promote_model, score_images, train_classifier

# The champion these tests score with is trained by the pipeline's jobs first: make test only.
pytestmark = pytest.mark.slow
FEATURES = ["--backbone", "timm:mobilenetv3_small_050", "--weights", "random:0", "--image-size", "64",
            "--batch-size", "16"]
CLASSES = ("beach", "night_sky")
# PSI over 5 bins of n batch and m reference images is about 4 * (1/n + 1/m) by chance alone: 160 training images
# (about 128 in the train split) and 120 in a batch keep an unchanged batch's components near 0.06, under 0.25.
TRAINING_PER_CLASS, DRIFT_BATCH_PER_CLASS = 80, 60


@pytest.fixture(scope="module")
def champion_lake(spark, s3_endpoint) -> str:
    """A lake on object storage whose registry has a champion, trained and promoted by the pipeline's jobs on two
    sample classes."""
    bucket = "scoring-training-set"
    s3_client().create_bucket(Bucket=bucket)
    training_set = sample_data.generate(per_class=TRAINING_PER_CLASS, seed=21, classes=CLASSES)
    sample_data.upload(s3_client(), bucket, "set", training_set)
    settle()
    lake_root = f"s3a://{bucket}/lake"
    common = ["--run-id", "manual__train", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{bucket}/set/", "--window-end", FAR_FUTURE])
    extract_features.main([*common, *FEATURES])
    train_classifier.main([*common, *TRAIN])
    evaluate_model.main([*common, "--min-test-images", "1"])
    promote_model.main(common)
    # The tables' data and metadata files are objects under the lake's prefix: nothing went to a local path.
    keys = {item["Key"] for item in s3_client().list_objects_v2(Bucket=bucket, Prefix="lake/")["Contents"]}
    fingerprint = Lake(lake_root).read_record("manual__train", FeaturesRecord).fingerprint
    assert fingerprint.startswith("timm-mobilenetv3_small_050-")
    backbone = Registry(Lake(lake_root).registry, "image_classifier").metadata(1)["backbone"]
    assert (backbone["backbone"], backbone["weights_kind"]) == ("timm:mobilenetv3_small_050", "random")
    for table in ("images", f"features/{fingerprint}"):
        assert any(key.startswith(f"lake/{table}/data/") for key in keys), table
        assert any(key.startswith(f"lake/{table}/metadata/") and key.endswith(".metadata.json") for key in keys), table
    return lake_root


@pytest.fixture(scope="module")
def unlabelled(s3_endpoint) -> tuple[str, dict[str, str]]:
    """(bucket, {key: true class}) of new images under inbox/ with no label folders, one exact copy of an image under
    a second key, and one object that is not an image."""
    bucket = "scoring-inbox"
    client = s3_client()
    client.create_bucket(Bucket=bucket)
    truth = {}
    images = list(sample_data.generate(per_class=4, seed=22, classes=CLASSES))
    for image in images:
        truth[f"inbox/{image.name}"] = image.label
        client.put_object(Bucket=bucket, Key=f"inbox/{image.name}", Body=image.content)
    client.put_object(Bucket=bucket, Key="inbox/copy-of-first.jpg", Body=images[0].content)
    truth["inbox/copy-of-first.jpg"] = images[0].label
    client.put_object(Bucket=bucket, Key="inbox/notes.txt", Body=b"not an image")
    settle()
    return bucket, truth


def _predictions(spark, lake_root: str, run_id: str) -> dict[str, dict]:
    predictions = spark.table(Lake(lake_root).predictions("image_classifier").identifier)
    rows = predictions.filter(f"run_id = '{run_id}'").collect()
    return {row["key"]: row.asDict() for row in rows}


def test_the_champion_labels_every_image_of_the_prefix_and_says_why_an_object_was_not_scored(
        spark, champion_lake, unlabelled):
    bucket, truth = unlabelled
    run_id = "asset_triggered__2026-11-27T12:00:00+00:00"
    score_images.main(["--run-id", run_id, "--lake-root", champion_lake, "--source-uri", f"s3://{bucket}/inbox/"])

    predictions = _predictions(spark, champion_lake, run_id)
    registry = Registry(Lake(champion_lake).registry, "image_classifier")
    fingerprint = registry.metadata(1)["fingerprint"]
    assert set(predictions) == {*truth, "inbox/notes.txt"}
    assert predictions["inbox/notes.txt"]["predicted_label"] is None
    assert predictions["inbox/notes.txt"]["reason"].startswith("not an image")
    scored = {key: row for key, row in predictions.items() if key in truth}
    for row in scored.values():
        assert row["reason"] is None and row["predicted_label"] in CLASSES
        assert 0.5 <= row["probability"] <= 1.0  # the chosen label's probability, of two classes
        assert (row["model_version"], row["fingerprint"], row["run_id"]) == (1, fingerprint, run_id)
    right = sum(row["predicted_label"] == truth[key] for key, row in scored.items())
    assert right >= 0.75 * len(scored)  # beaches and night skies apart; chance would be 0.5
    copy = "inbox/copy-of-first.jpg"
    first = next(key for key in truth if key != copy and truth[key] == truth[copy])
    assert predictions["inbox/copy-of-first.jpg"]["sha256"] == predictions[first]["sha256"]
    assert predictions["inbox/copy-of-first.jpg"]["predicted_label"] == predictions[first]["predicted_label"]

    report = Lake(champion_lake).read_record(run_id, ScoringRecord)
    assert (report.scored, report.not_scored, report.model_version) == (len(truth), {"not an image": 1}, 1)
    assert sum(report.labels.values()) == len(truth)
    # The copy is one image: 8 distinct images are too few for a verdict at the default minimum.
    assert report.drift["skipped"] == "8 images scored, fewer than the 100 a drift verdict needs (drift_min_images)"
    assert report.drift["alarm"] is False and report.drift["checks"] == []


def test_a_rerun_replaces_its_own_predictions_and_a_window_narrows_what_is_scored(spark, champion_lake, unlabelled):
    bucket, truth = unlabelled
    source = ["--lake-root", champion_lake, "--source-uri", f"s3://{bucket}/inbox/"]
    score_images.main(["--run-id", "manual__once", *source])
    score_images.main(["--run-id", "manual__once", *source])
    assert len(_predictions(spark, champion_lake, "manual__once")) == len(truth) + 1

    score_images.main(["--run-id", "manual__later", *source,
                       "--window-start", "", "--window-end", "2026-01-01T00:00:00Z"])
    assert _predictions(spark, champion_lake, "manual__later") == {}
    assert Lake(champion_lake).read_record("manual__later", ScoringRecord).outside_window == len(truth) + 1
    assert len(_predictions(spark, champion_lake, "manual__once")) == len(truth) + 1  # other runs' output stays


def test_scoring_without_a_champion_is_refused_in_one_line(lake_root, s3_bucket):
    with pytest.raises(InputError, match="image_classifier has no champion in .*: promote a model"):
        score_images.main(["--run-id", "manual__x", "--lake-root", lake_root, "--source-uri", f"s3://{s3_bucket}/inbox/"])


def _invert(content: bytes) -> bytes:
    from PIL import Image, ImageOps

    buffer = io.BytesIO()
    ImageOps.invert(Image.open(io.BytesIO(content)).convert("RGB")).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def drift_batches(s3_endpoint) -> str:
    """A bucket with two batches of unlabelled images: like/, drawn as the training set was (its generator, another
    seed, the same classes, balanced), and shifted/, like/'s beaches alone, inverted."""
    bucket = "scoring-drift"
    client = s3_client()
    client.create_bucket(Bucket=bucket)
    for image in sample_data.generate(per_class=DRIFT_BATCH_PER_CLASS, seed=23, classes=CLASSES):
        client.put_object(Bucket=bucket, Key=f"like/{image.name}", Body=image.content)
        if image.label == "beach":
            client.put_object(Bucket=bucket, Key=f"shifted/{image.name}.jpg", Body=_invert(image.content))
    settle()
    return bucket


def _score_for_drift(lake_root: str, bucket: str, prefix: str, run_id: str) -> dict:
    score_images.main(["--run-id", run_id, "--lake-root", lake_root, "--source-uri", f"s3://{bucket}/{prefix}/",
                       "--drift-min-images", "20"])
    return Lake(lake_root).read_record(run_id, ScoringRecord).drift


def _drift_rows(spark, lake_root: str, run_id: str) -> list[dict]:
    table = spark.table(Lake(lake_root).drift("image_classifier").identifier)
    return [row.asDict() for row in table.filter(f"run_id = '{run_id}'").collect()]


def test_training_stores_a_drift_reference_beside_the_versions_metadata(champion_lake):
    registry = Registry(Lake(champion_lake).registry, "image_classifier")
    metadata = registry.metadata(1)
    reference = registry.document(1, "drift_reference")

    assert reference["format"] == 1
    assert reference["labels"] == metadata["labels"]
    assert reference["train_images"] == sum(metadata["rows"]["train"].values())
    assert reference["heldout_images"] == sum(sum(metadata["rows"].get(split, {}).values())
                                              for split in ("validation", "test"))
    assert sum(reference["class_mix"]) == pytest.approx(1.0)
    assert len(reference["top_probability"]) == 5 and sum(reference["top_probability"]) == pytest.approx(1.0)
    assert [len(component) for component in reference["components"]] == [metadata["feature_dimension"]] * 5
    assert [len(edges) for edges in reference["feature_edges"]] == [4] * 5
    for shares in reference["feature_proportions"]:
        assert sum(shares) == pytest.approx(1.0)


def test_images_drawn_like_the_training_set_raise_no_drift_alarm(spark, champion_lake, drift_batches):
    run_id = "manual__drift_like"
    drift = _score_for_drift(champion_lake, drift_batches, "like", run_id)

    assert drift["skipped"] is None, drift
    assert drift["images"] == 2 * DRIFT_BATCH_PER_CLASS
    assert [check["name"] for check in drift["checks"]] == ["class_mix_psi", "top_probability_psi",
                                                            "feature_psi_max"]
    assert drift["alarm"] is False, drift
    assert len(drift["feature_components"]) == 5
    [row] = _drift_rows(spark, champion_lake, run_id)
    assert (row["alarm"], row["images"], row["model_version"], row["model_name"]) == (
        False, 2 * DRIFT_BATCH_PER_CLASS, 1, "image_classifier")
    assert row["class_mix_psi_threshold"] == 0.25 and row["feature_psi_max_alarm"] is False


def test_one_class_inverted_raises_a_drift_alarm_naming_the_figures_that_crossed(spark, champion_lake, drift_batches):
    run_id = "manual__drift_shifted"
    drift = _score_for_drift(champion_lake, drift_batches, "shifted", run_id)

    assert drift["alarm"] is True, drift
    alarmed = {check["name"] for check in drift["checks"] if check["alarm"]}
    assert {"class_mix_psi", "feature_psi_max"} <= alarmed, drift
    [row] = _drift_rows(spark, champion_lake, run_id)
    assert (row["alarm"], row["class_mix_psi_alarm"], row["feature_psi_max_alarm"]) == (True, True, True)
    assert row["images"] == DRIFT_BATCH_PER_CLASS


def test_a_version_without_a_reference_is_scored_with_drift_skipped_and_a_rerun_replaces_the_runs_drift_row(
        spark, champion_lake, drift_batches, monkeypatch):
    run_id = "manual__drift_rerun"
    assert _score_for_drift(champion_lake, drift_batches, "shifted", run_id)["alarm"] is True

    # A version trained before drift monitoring: the registry holds no drift_reference document for it.
    stored = Versions.document

    def without_reference(self, version, name):
        return None if name == "drift_reference" else stored(self, version, name)

    monkeypatch.setattr(Versions, "document", without_reference)
    drift = _score_for_drift(champion_lake, drift_batches, "shifted", run_id)

    assert drift["skipped"].startswith("version 1 has no drift reference"), drift
    assert (drift["alarm"], drift["checks"]) == (False, [])
    [row] = _drift_rows(spark, champion_lake, run_id)
    assert (row["alarm"], row["skipped"], row["class_mix_psi"]) == (False, drift["skipped"], None)
