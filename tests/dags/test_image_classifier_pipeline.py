"""The pipeline DAG as Airflow loads it: no import errors, the tasks in order, safe defaults (parse time and light
imports of every DAG file: test_dag_files.py)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest

from imagepipe import settings

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_ID = "image_classifier_pipeline"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def test_tasks_run_in_pipeline_order(dag):
    order = ["ingest", "finetune_backbone", "extract_features", "train", "evaluate", "gate", "promote",
             "publish_champion"]
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in itertools.pairwise(order):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_features_are_extracted_after_a_fine_tune_that_ran_or_was_skipped_never_after_one_that_failed(dag):
    from airflow.sdk import TriggerRule

    rules = {task.task_id: task.trigger_rule for task in dag.tasks}
    # none_failed: every upstream succeeded or was skipped (a failed or upstream_failed fine-tune stops it).
    assert rules.pop("extract_features") == TriggerRule.NONE_FAILED
    assert set(rules.values()) == {TriggerRule.ALL_SUCCESS}


def test_spark_tasks_submit_their_own_job_through_the_spark_default_connection(dag):
    jobs = {"ingest": "ingest_images", "finetune_backbone": "finetune_backbone", "extract_features": "extract_features",
            "train": "train_classifier", "evaluate": "evaluate_model"}
    for task_id, job in jobs.items():
        task = dag.get_task(task_id)
        assert task.task_type == "SparkJobOperator"  # spark-submit, stopping the whole job on kill
        assert task.job == job and settings.spark_job(job).exists()
        assert task._conn_id == "spark_default"


def test_promote_runs_its_job_without_spark(dag):
    task = dag.get_task("promote")
    assert task.task_type == "LocalJobOperator"  # a pointer write: no JVM, no Spark session, no executors
    assert task.job == "promote_model" and settings.spark_job("promote_model").exists()


SPARK_TASKS = ("ingest", "finetune_backbone", "extract_features", "train", "evaluate")
TORCH_TASKS = ("finetune_backbone", "extract_features")


def test_every_job_gets_the_runs_resources_and_when_it_runs_the_clusters_conf(dag, monkeypatch, tmp_path):
    import json

    env = dag.get_template_env()
    params = {"executor_cores": 3, "executor_memory": "1536m", "shuffle_partitions": 12}
    for task_id in SPARK_TASKS:
        task = dag.get_task(task_id)
        conf = {key: env.from_string(value).render(params=params) for key, value in task.conf.items()}
        assert conf == {"spark.executor.cores": "3", "spark.executor.memory": "1536m",
                        "spark.sql.shuffle.partitions": "12"}, task_id
    # The deployment's properties are read where and when the task runs, from an environment the DAG file's parse
    # never saw: a changed cluster conf needs no re-parse.
    monkeypatch.setenv("IMAGEPIPE_SPARK_CONF", '{"spark.hadoop.fs.s3a.path.style.access": "true"}')
    monkeypatch.setenv("IMAGEPIPE_GPUS_PER_EXECUTOR", "2")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "spark://cluster",
                                                                 "port": 7077}))
    from imagepipe import jars

    monkeypatch.setenv("IMAGEPIPE_JARS_DIR", str(jars.cache_dir()))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # where no class archive is built
    for task_id in SPARK_TASKS:
        conf = dag.get_task(task_id)._get_hook()._conf
        assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true", task_id
        # GPUs for the jobs that run torch alone.
        gpus = (conf.get("spark.executor.resource.gpu.amount"), conf.get("spark.task.resource.gpu.amount"))
        assert gpus == (("2", "1") if task_id in TORCH_TASKS else (None, None)), task_id


def test_a_malformed_cluster_conf_is_refused_in_one_line(monkeypatch):
    from imagepipe import settings

    monkeypatch.setenv("IMAGEPIPE_SPARK_CONF", "spark.executor.cores=2")
    with pytest.raises(ValueError, match="IMAGEPIPE_SPARK_CONF is not JSON"):
        settings.cluster_spark_conf()


def test_resource_params_refuse_values_spark_would_choke_on(dag):
    from airflow.sdk.exceptions import ParamValidationError

    refused = {"executor_cores": 0, "executor_memory": "2 GB", "shuffle_partitions": 0}
    for name, value in refused.items():
        with pytest.raises(ParamValidationError):
            copy.deepcopy(dag.params.get_param(name)).resolve(value)
    assert copy.deepcopy(dag.params.get_param("executor_memory")).resolve("512m") == "512m"


def test_every_task_retries_with_backoff_and_has_a_timeout(dag):
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff > 1, task.task_id
        assert task.execution_timeout is not None, task.task_id


def test_dag_is_documented_tagged_and_scheduled_with_real_intervals(dag):
    from datetime import datetime, timedelta, timezone

    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    assert "Image classifier pipeline" in dag.doc_md
    assert {"imagepipe", "spark"} <= set(dag.tags)
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    # The timetable as the scheduler sees it: a daily run covers the whole previous day, not a zero-length instant.
    timetable = decode_timetable(encode_timetable(dag.timetable))
    interval = timetable.infer_manual_data_interval(run_after=datetime(2026, 11, 27, 12, tzinfo=timezone.utc))
    assert (interval.start, interval.end) == (
        datetime(2026, 11, 26, tzinfo=timezone.utc), datetime(2026, 11, 27, tzinfo=timezone.utc)
    )
    assert interval.end - interval.start == timedelta(days=1)


def test_gate_is_a_short_circuit_that_leaves_the_run_green(dag):
    gate = dag.get_task("gate")
    assert gate.task_type == "_ShortCircuitDecoratedOperator"
    assert gate.ignore_downstream_trigger_rules is True


def test_params_refuse_invalid_trigger_input(dag):
    from airflow.sdk.exceptions import ParamValidationError

    params = dag.params
    refused = {"backbone": "timm:not_a_timm_model", "source_uri": "/local/path", "min_accuracy": 1.5, "image_size": 8,
               "window_end": "yesterday", "label_manifest": "s3://bucket/labels.xlsx", "max_rejected_fraction": -0.1}
    for name, value in refused.items():
        with pytest.raises(ParamValidationError):
            params.get_param(name).resolve(value)
    assert params.get_param("backbone").resolve("resnet18") == "resnet18"
    assert params.get_param("backbone").resolve("timm:convnext_tiny.fb_in22k") == "timm:convnext_tiny.fb_in22k"
    assert params.get_param("window_end").resolve("2026-11-27T00:00:00+00:00") == "2026-11-27T00:00:00+00:00"


def test_preprocessing_param_refuses_unknown_steps_and_reaches_the_job_as_its_comma_list(dag):
    from airflow.sdk.exceptions import ParamValidationError

    from spark_jobs import extract_features

    assert dag.params.get_param("preprocessing").resolve() == ["exif_transpose"]  # the default
    param = copy.deepcopy(dag.params.get_param("preprocessing"))  # resolve() keeps the value it accepts
    for refused in (["sharpen"], ["median:4"], ["median"], ["autocontrast:2"], "exif_transpose"):
        with pytest.raises(ParamValidationError):
            param.resolve(refused)
    steps = ["exif_transpose", "median:3", "gaussian:1.5", "autocontrast", "equalize", "pad_to_square"]
    assert param.resolve(steps) == steps

    for sent in (steps, []):
        args = extract_features.parse_args(_rendered_args(dag, "extract_features", {"preprocessing": sent}))
        assert args.spec.steps == tuple(sent)


def test_model_params_refuse_invalid_trigger_input(dag):
    from airflow.sdk.exceptions import ParamValidationError

    refused = {"classifier": "xgboost", "hyperparameters": {"learning_rate": 0.1}, "feature_transforms": ["pca:0"],
               "class_weights": "heavy", "selection_folds": 1, "training_days": 0, "min_macro_f1": 2,
               "compare_metric": "recall", "max_drop": -0.1, "min_test_images": 0}
    for name, value in refused.items():
        param = copy.deepcopy(dag.params.get_param(name))
        with pytest.raises(ParamValidationError):
            param.resolve(value)
    accepted = {"hyperparameters": {"reg_param": [0.001, 0.1], "hidden_layers": [[64], [128, 32]]},
                "feature_transforms": ["standard_scaler", "pca:64"], "min_macro_f1": None}
    for name, value in accepted.items():
        assert copy.deepcopy(dag.params.get_param(name)).resolve(value) == value


def _rendered_args(dag, task_id: str, params: dict) -> list[str]:
    env = dag.get_template_env()
    resolved = {**{name: dag.params.get_param(name).resolve() for name in dag.params}, **params}
    args = dag.get_task(task_id).application_args
    return [env.from_string(arg).render(params=resolved, run_id="manual__x") for arg in args]


@pytest.mark.parametrize(
    "params",
    [{}, {"classifier": "mlp", "hyperparameters": {"hidden_layers": [[16], [32, 8]]}, "feature_transforms": ["pca:8"],
          "training_days": 7, "min_macro_f1": 0.5, "max_drop": None, "min_gain": 0.01, "allow_label_change": True}],
    ids=["defaults", "every-option"],
)
def test_train_and_evaluate_jobs_accept_what_the_form_sends(dag, params):
    from spark_jobs import evaluate_model, train_classifier

    train = train_classifier.parse_args(_rendered_args(dag, "train", params))
    evaluate = evaluate_model.parse_args(_rendered_args(dag, "evaluate", params))

    assert train.classifier == params.get("classifier", "logistic_regression")
    assert train.hyperparameters == params.get("hyperparameters", {})
    assert train.feature_transforms == params.get("feature_transforms", [])
    assert train.training_days == params.get("training_days")
    assert evaluate_model.thresholds(evaluate).min_macro_f1 == params.get("min_macro_f1")
    assert evaluate.max_drop == params.get("max_drop", 0.01)
    assert evaluate.min_gain == params.get("min_gain")
    assert evaluate_model.thresholds(evaluate).allow_label_change is params.get("allow_label_change", False)


def test_tasks_that_write_shared_lake_tables_run_one_at_a_time_across_all_runs(dag):
    # Backfill runs are not held by the DAG's max_active_runs; the task-level limit holds every run type.
    assert dag.get_task("ingest").max_active_tis_per_dag == 1
    assert dag.get_task("extract_features").max_active_tis_per_dag == 1
    assert dag.get_task("finetune_backbone").max_active_tis_per_dag == 1  # the same inputs write the same folder
    assert dag.get_task("train").max_active_tis_per_dag is None


def test_finetune_is_off_by_default_and_its_params_refuse_invalid_trigger_input(dag):
    from airflow.sdk.exceptions import ParamValidationError

    assert copy.deepcopy(dag.params.get_param("finetune")).resolve() is False
    refused = {"finetune": "yes", "finetune_epochs": 0, "finetune_learning_rate": 0, "finetune_batch_size": 1,
               "finetune_optimizer": "adam", "finetune_freeze": 99, "finetune_augmentation": ["rotate:10"],
               "finetune_processes": 0, "finetune_patience": 0}
    for name, value in refused.items():
        with pytest.raises(ParamValidationError):
            copy.deepcopy(dag.params.get_param(name)).resolve(value)


@pytest.mark.parametrize("finetune", [False, True], ids=["off", "on"])
def test_with_finetune_on_extraction_takes_the_runs_fine_tuned_weights_and_both_jobs_get_the_forms_values(
        dag, finetune):
    from spark_jobs import extract_features, finetune_backbone

    sent = {"finetune": finetune, "backbone": "resnet18", "weights": "random:3", "image_size": 64,
            "finetune_epochs": 2, "finetune_learning_rate": 0.01, "finetune_optimizer": "sgd", "finetune_freeze": 2,
            "finetune_augmentation": ["horizontal_flip", "color_jitter:0.2"], "finetune_processes": 2,
            "training_days": 14}
    tuned = finetune_backbone.parse_args(_rendered_args(dag, "finetune_backbone", sent))
    extract = extract_features.parse_args(_rendered_args(dag, "extract_features", sent))

    assert (tuned.spec.backbone, tuned.spec.weights, tuned.spec.image_size) == ("resnet18", "random:3", 64)
    assert (tuned.config.epochs, tuned.config.learning_rate, tuned.config.optimizer) == (2, 0.01, "sgd")
    assert tuned.config.freeze == 2 and tuned.config.augmentation == ("horizontal_flip", "color_jitter:0.2")
    assert (tuned.finetune_processes, tuned.training_days) == (2, 14)
    # extract_features is told to take the run's finetune record's weights, not left to find one by itself.
    assert extract.finetune is finetune
    assert (extract.spec.backbone, extract.spec.weights, extract.spec.image_size) == ("resnet18", "random:3", 64)


def test_a_timm_backbone_reaches_both_jobs_and_a_size_it_does_not_take_is_refused_by_the_job(dag):
    from spark_jobs import extract_features, finetune_backbone

    sent = {"backbone": "timm:vit_small_patch14_dinov2.lvd142m", "weights": "random:0"}  # the form's image_size
    extract = extract_features.parse_args(_rendered_args(dag, "extract_features", sent))
    assert (extract.spec.backbone, extract.spec.image_size) == ("timm:vit_small_patch14_dinov2.lvd142m", None)
    assert extract.spec.preprocessing().crop_size == [518]  # the model's own, as the form's empty size says
    assert finetune_backbone.parse_args(_rendered_args(dag, "finetune_backbone", sent)).spec == extract.spec

    with pytest.raises(SystemExit):
        extract_features.parse_args(_rendered_args(dag, "extract_features", {**sent, "image_size": 224}))
