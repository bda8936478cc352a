"""What the jobs tests share to run the pipeline's jobs in-process on a real lake: ingest, features, training and
evaluation of one run, small and fast (a seeded random resnet18 on 96-pixel crops)."""

from __future__ import annotations

from conftest import settle
from imagepipe.dev import sample_data
from imagepipe.object_store import s3_client
from spark_jobs import evaluate_model, extract_features, ingest_images, train_classifier

FAR_FUTURE = "2100-01-01T00:00:00+00:00"
SMALL_IMAGE_KEY = "set/beach/small.png"
FEATURES = ["--backbone", "resnet18", "--weights", "random:0", "--image-size", "96", "--batch-size", "16"]
# Logistic regression runs one Spark job per iteration and rarely stops before its default hundred on a few dozen
# separable vectors: twenty reach the same answers here at a fifth of the jobs.
TRAIN = ["--hyperparameters", '{"max_iter": 20}']


def run_pipeline(bucket: str, lake_root: str, run_id: str, *evaluate_args: str) -> None:
    common = ["--run-id", run_id, "--lake-root", lake_root]
    ingest_images.main([*common, "--source-uri", f"s3://{bucket}/set/", "--window-end", FAR_FUTURE])
    extract_features.main([*common, *FEATURES])
    train_classifier.main([*common, *TRAIN])
    evaluate_model.main([*common, *evaluate_args])


def upload_with_a_small_image(bucket: str, per_class: int, seed: int) -> None:
    """Sample images of each class under set/, and one 12-pixel PNG (SMALL_IMAGE_KEY), which ingest quarantines
    unless --min-side allows it."""
    import io

    from PIL import Image

    sample_data.upload(s3_client(), bucket, "set", sample_data.generate(per_class=per_class, seed=seed))
    small = io.BytesIO()
    Image.new("RGB", (12, 12), (30, 120, 200)).save(small, format="PNG")
    s3_client().put_object(Bucket=bucket, Key=SMALL_IMAGE_KEY, Body=small.getvalue())
    settle()
