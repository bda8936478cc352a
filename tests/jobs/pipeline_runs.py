"""What the jobs tests share to run the pipeline's jobs in-process on a real lake: ingest, features, training and
evaluation of one run, small and fast (a seeded random resnet18 on 96-pixel crops)."""

from __future__ import annotations

from spark_jobs import evaluate_model, extract_features, ingest_images, train_classifier

FAR_FUTURE = "2100-01-01T00:00:00+00:00"
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
