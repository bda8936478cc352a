"""extract_features -> train_classifier -> evaluate_model -> promote_model on a real lake, in local Spark."""

from __future__ import annotations

import csv
import io
import random

import pytest
from PIL import Image

from conftest import settle
from imagepipe.dev import sample_data
from imagepipe.errors import InputError
from imagepipe.evaluation import score
from imagepipe.lake import Lake
from imagepipe.object_store import s3_client
from imagepipe.records import FeaturesRecord, WindowRecord
from imagepipe.registry import Registry
from pipeline_runs import FAR_FUTURE, FEATURES, TRAIN, run_pipeline
from spark_jobs import evaluate_model, extract_features, ingest_images, promote_model, train_classifier

# Each scenario ingests, featurises, trains and evaluates whole runs: make test only.
pytestmark = pytest.mark.slow
HOSTILE = "<script>alert(1)</script>"  # a label a manifest can give (a folder name cannot hold its `/`)


@pytest.fixture(scope="module")
def trained_lake(spark, s3_endpoint, tmp_path_factory) -> str:
    """A lake where run manual__first ingested, featurised, trained and evaluated 120 labelled images."""
    bucket = "labelled-set"
    s3_client().create_bucket(Bucket=bucket)
    sample_data.upload(s3_client(), bucket, "set", sample_data.generate(per_class=30, seed=3))
    settle()
    lake_root = str(tmp_path_factory.mktemp("trained") / "lake")
    run_pipeline(bucket, lake_root, "manual__first")
    return lake_root


@pytest.fixture
def shuffled_bucket(s3_bucket):
    """The same kind of images with labels assigned at random: nothing to learn."""
    rng = random.Random(11)
    images = [
        sample_data.SampleImage(rng.choice(sample_data.CLASSES), image.name, image.content)
        for image in sample_data.generate(per_class=30, seed=3)
    ]
    sample_data.upload(s3_client(), s3_bucket, "set", iter(images))
    settle()
    return s3_bucket


def test_pipeline_trains_a_model_that_passes_its_gate_and_becomes_champion(spark, trained_lake):
    lake_root = trained_lake
    lake = Lake(lake_root)
    registry = Registry(lake.registry, "image_classifier")

    features = lake.read_record("manual__first", FeaturesRecord)
    assert features.rows == spark.table(lake.images.identifier).count() == 120
    metadata = registry.metadata(1)
    assert metadata["labels"] == sorted(sample_data.CLASSES)
    assert metadata["fingerprint"] == features.fingerprint
    assert metadata["model"]["classifier"] == "logistic_regression"
    assert metadata["hyperparameters"] == {"reg_param": 0.01, "elastic_net_param": 0.0, "max_iter": 20}
    assert sum(metadata["rows"]["train"].values()) + sum(metadata["rows"]["test"].values()) <= 120
    assert [entry["ingest_run"] for entry in metadata["data_windows"]] == ["manual__first"]
    assert metadata["spark_application_id"]
    metrics = registry.document(1, "metrics")
    # A broken pipeline (labels detached from images) scores near 0.25 on four classes.
    assert metrics["candidate"]["accuracy"] >= 0.8
    assert sum(row["support"] for row in metrics["candidate"]["per_class"].values()) == metrics["candidate"]["rows"]
    verdict = registry.document(1, "verdict")
    assert verdict["passed"] is True and verdict["notes"] == ["no champion yet: only the value thresholds apply"]
    assert "| metric | candidate v1 | none | change |" in registry.read_file(1, "report.md").decode()
    assert registry.read_file(1, "report.html").decode().startswith("<!doctype html>")
    assert registry.read_file(1, "confusion_matrix.png").startswith(b"\x89PNG")

    promote_model.main(["--run-id", "manual__first", "--lake-root", lake_root])
    assert registry.champion_version() == 1
    promote_model.main(["--run-id", "manual__first", "--lake-root", lake_root])
    assert len(registry.history()) == 1


def test_the_trained_model_labels_images_by_name(spark, trained_lake):
    lake = Lake(trained_lake)
    fingerprint = lake.read_record("manual__first", FeaturesRecord).fingerprint
    model = Registry(lake.registry, "image_classifier").load_model(1)
    scored = score(model, spark.table(lake.features(fingerprint).identifier))
    right = scored.filter("predicted_label = label").count()
    assert right / scored.count() >= 0.8


def test_a_model_trained_on_shuffled_labels_fails_its_gate_and_is_not_promoted(spark, shuffled_bucket, lake_root):
    run_pipeline(shuffled_bucket, lake_root, "manual__shuffled", "--min-accuracy", "0.6")
    registry = Registry(Lake(lake_root).registry, "image_classifier")
    verdict = registry.document(1, "verdict")
    assert verdict["passed"] is False
    assert {check["name"]: check["passed"] for check in verdict["checks"]}["min_accuracy"] is False

    with pytest.raises(InputError, match="failed its gate"):
        promote_model.main(["--run-id", "manual__shuffled", "--lake-root", lake_root])
    assert registry.champion_version() is None


def test_the_report_shows_the_test_images_the_model_got_wrong_from_thumbnails_in_the_version(
        spark, s3_bucket, lake_root, tmp_path):
    # Labels drawn at random, one of them script-like, from a label manifest: the model gets many test images wrong.
    rng = random.Random(5)
    images = list(sample_data.generate(per_class=30, seed=6, classes=("beach", "forest", "night_sky")))
    sample_data.upload(s3_client(), s3_bucket, "set", iter(images))
    settle()
    manifest = tmp_path / "labels.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "label"])
        writer.writerows([f"set/{image.label}/{image.name}", rng.choice(["beach", "forest", HOSTILE])]
                         for image in images)
    common = ["--run-id", "manual__gallery", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", FAR_FUTURE,
                        "--label-manifest", str(manifest)])
    extract_features.main([*common, *FEATURES])
    train_classifier.main([*common, *TRAIN])
    evaluate_model.main([*common, "--min-test-images", "1"])

    lake = Lake(lake_root)
    registry = Registry(lake.registry, "image_classifier")
    window_end = lake.read_record("manual__gallery", WindowRecord).window.end_id
    test = evaluate_model.test_split(spark, lake, registry.metadata(1)["fingerprint"], window_end)
    scored = {row["sha256"]: row for row in score(registry.load_model(1), test).collect()}
    wrong = {sha for sha, row in scored.items() if row["label"] != row["predicted_label"]}
    shown = registry.document(1, "metrics")["gallery"]
    assert wrong and {row["sha256"] for row in shown["misclassified"]} == wrong
    page = registry.read_file(1, "report.html").decode()
    for row in shown["misclassified"]:
        truth = scored[row["sha256"]]
        assert (row["label"], row["predicted"]) == (truth["label"], truth["predicted_label"])
        caption = f"true: {truth['label']}<br>predicted: {truth['predicted_label']}<br>p = {row['probability']:.2f}"
        assert caption.replace("<script>", "&lt;script&gt;").replace("</script>", "&lt;/script&gt;") in page
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    # Every example's thumbnail is in the version, listed in its manifest: a small JPEG of the lake's image.
    files = registry.manifest(1)["files"]
    sizes = {row["sha256"]: (row["width"], row["height"]) for row in
             spark.table(lake.images.identifier).select("sha256", "width", "height").collect()}
    for row in shown["misclassified"] + shown["correct"]:
        assert row["thumbnail"] == f"thumbnails/{row['sha256']}.jpg" and row["thumbnail"] in files
        with Image.open(io.BytesIO(registry.read_file(1, row["thumbnail"]))) as thumbnail:
            width, height = sizes[row["sha256"]]
            assert thumbnail.format == "JPEG" and max(thumbnail.size) == 96
            assert thumbnail.width / thumbnail.height == pytest.approx(width / height, rel=0.05)
    assert len(shown["correct"]) > 0 and all(row["label"] == row["predicted"] for row in shown["correct"])


def test_training_refuses_a_single_class_naming_it(spark, s3_bucket, lake_root):
    sample_data.upload(s3_client(), s3_bucket, "set", sample_data.generate(per_class=12, seed=5, classes=("forest",)))
    settle()
    common = ["--run-id", "manual__one", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", FAR_FUTURE])
    extract_features.main([*common, *FEATURES])
    with pytest.raises(InputError, match="at least two classes.*forest="):
        train_classifier.main([*common, *TRAIN])
    assert Registry(Lake(lake_root).registry, "image_classifier").versions() == []


def test_a_retried_training_reuses_its_version(spark, trained_lake):
    train_classifier.main(["--run-id", "manual__first", "--lake-root", trained_lake, *TRAIN])
    assert Registry(Lake(trained_lake).registry, "image_classifier").versions() == [1]


def test_training_refuses_a_feature_table_mixing_feature_spaces(spark, trained_lake):
    from pyspark.sql import functions as F

    from imagepipe.training import check_one_feature_space

    lake = Lake(trained_lake)
    fingerprint = lake.read_record("manual__first", FeaturesRecord).fingerprint
    features = spark.table(lake.features(fingerprint).identifier)
    check_one_feature_space(features, fingerprint)
    other_space = F.when(F.col("label") == "beach", F.lit("resnet50-other")).otherwise(F.col("fingerprint"))
    mixed = features.withColumn("fingerprint", other_space)
    with pytest.raises(InputError, match=f"feature table of {fingerprint} holds rows of resnet50-other"):
        check_one_feature_space(mixed, fingerprint)


def test_a_champion_from_another_feature_space_is_judged_on_the_same_test_images(spark, s3_bucket, lake_root):
    sample_data.upload(s3_client(), s3_bucket, "set", sample_data.generate(per_class=25, seed=8))
    settle()
    run_pipeline(s3_bucket, lake_root, "manual__a", "--min-test-images", "5")
    promote_model.main(["--run-id", "manual__a", "--lake-root", lake_root])
    # New images arrive, and the next run switches the input size: a new feature space the champion never saw.
    sample_data.upload(s3_client(), s3_bucket, "set", sample_data.generate(per_class=10, seed=9))
    settle()
    common = ["--run-id", "manual__b", "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{s3_bucket}/set/", "--window-end", FAR_FUTURE])
    extract_features.main([*common, *FEATURES[:-4], "--image-size", "64", "--batch-size", "16"])
    train_classifier.main([*common, *TRAIN])
    evaluate_model.main([*common, "--min-test-images", "5"])

    registry = Registry(Lake(lake_root).registry, "image_classifier")
    assert registry.metadata(2)["fingerprint"] != registry.metadata(1)["fingerprint"]
    metrics = registry.document(2, "metrics")
    assert metrics["champion"]["version"] == 1
    assert metrics["champion"]["rows"] == metrics["candidate"]["rows"]
    assert {check["name"] for check in registry.document(2, "verdict")["checks"]} >= {"min_accuracy", "max_drop"}


def test_grid_search_and_feature_transforms_reach_the_model_metadata(spark, trained_lake):
    lake = Lake(trained_lake)
    window = lake.read_record("manual__first", WindowRecord)
    for kind in (WindowRecord, FeaturesRecord):
        lake.write_record("manual__grid", lake.read_record("manual__first", kind))
    train_classifier.main(["--run-id", "manual__grid", "--lake-root", trained_lake,
                           "--classifier", "logistic_regression",
                           "--hyperparameters", '{"reg_param": [10.0, 0.01], "max_iter": 10}',
                           "--feature-transforms", "pca:16", "--selection-folds", "2"])
    registry = Registry(lake.registry, "image_classifier")
    metadata = registry.metadata(registry.version_for_run("manual__grid"))
    assert metadata["hyperparameters"]["reg_param"] == 0.01
    assert [result["hyperparameters"]["reg_param"] for result in metadata["selection"]] == [10.0, 0.01]
    assert metadata["model"]["feature_transforms"] == ["pca:16"]
    assert metadata["data_window_end"] == window.end
