"""
### Image classifier pipeline

Ingests the images of one window from S3-compatible storage, extracts CNN features, trains a Spark MLlib
classifier, evaluates it against the current champion on the same held-out images, and promotes it when it passes.

| task | Spark job | writes |
|---|---|---|
| ingest | `spark_jobs/ingest_images.py` | curated images, quarantine, ingest report |
| extract_features | `spark_jobs/extract_features.py` | feature vectors of the run's feature space |
| train | `spark_jobs/train_classifier.py` | a new model version in the registry |
| evaluate | `spark_jobs/evaluate_model.py` | metrics and verdict of that version |
| gate | (reads the verdict) | skips promotion, run still green, when a check failed (unless `force_promote`) |
| promote | `spark_jobs/promote_model.py` | champion pointer (compare-and-swap) and history; backfills keep the champion |
| publish_champion | (reads the champion pointer) | the champion asset's event, only when this run changed the champion |

**Window.** Scheduled and backfill runs take the objects whose LastModified lies in their data interval. Manual
runs take `window_start`/`window_end` from the trigger form; left empty, everything not ingested yet up to the
moment of the trigger. A window with no new images skips the rest of the run (green, with the reason in the
extract_features log) unless `require_new_images` is off.

**Assets.** ingest updates `imagepipe_curated_images`, extract_features `imagepipe_features`, and publish_champion
`imagepipe_champion_image_classifier` (extra: version, from, kind), which `image_batch_scoring` is scheduled on.
A skipped task updates nothing.

Spark master and deploy mode come from the `spark_default` connection, properties every job needs on the cluster
from `IMAGEPIPE_SPARK_CONF`, and each run's executor cores, memory and shuffle partitions from its params. Executors
get the imagepipe library as a --py-files archive built when the task starts. The object store's endpoint comes
from the `imagepipe_s3` connection's `endpoint_url` extra when it exists, else AWS_ENDPOINT_URL. On a cluster with
GPUs, `IMAGEPIPE_GPUS_PER_EXECUTOR` (and `IMAGEPIPE_GPUS_PER_TASK`, `IMAGEPIPE_GPU_DISCOVERY_SCRIPT`) give GPUs to
extract_features alone.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from imagepipe import assets, orchestration, settings
from imagepipe.classifiers import CLASSIFIERS, HYPERPARAMETER_NAMES
from imagepipe.featurizer import BACKBONES
from imagepipe.preprocessing import DEFAULT_STEPS, STEP_PATTERN
from imagepipe.spark_submit import SparkJobOperator

LAKE_ROOT = settings.lake_root()
MODEL_NAME = settings.DEFAULT_MODEL_NAME
REGISTRY_URI = settings.registry_uri(LAKE_ROOT)
JOBS = settings.spark_jobs_dir()
RUN = ["--run-id", "{{ run_id }}", "--lake-root", LAKE_ROOT]
MODEL_RUN = [*RUN, "--model-name", MODEL_NAME, "--registry-uri", REGISTRY_URI]
CURATED_IMAGES = assets.curated_images(LAKE_ROOT)
FEATURES = assets.features(LAKE_ROOT)
CHAMPION = assets.champion(REGISTRY_URI, MODEL_NAME)
# Per-run resources of every job; the cluster's own properties (IMAGEPIPE_SPARK_CONF) come first, GPUs last.
RESOURCES = {
    "spark.executor.cores": "{{ params.executor_cores }}",
    "spark.executor.memory": "{{ params.executor_memory }}",
    "spark.sql.shuffle.partitions": "{{ params.shuffle_partitions }}",
}

with DAG(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable(settings.schedule(), timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["imagepipe", "spark", "ml"],
    default_args=orchestration.task_defaults(execution_timeout=timedelta(hours=2)),
    user_defined_macros={
        "window_start": orchestration.window_start,
        "run_type": orchestration.run_type,
        "window_end": orchestration.window_end,
        "s3_endpoint_url": orchestration.s3_endpoint_url,
    },
    params={
        "source_uri": Param(
            settings.default_source_uri(), type="string", pattern=r"^s3a?://[^/]+/.*$",
            title="Source URI", description="S3 prefix holding <label>/<image> objects, e.g. s3://bucket/images/",
        ),
        "label_manifest": Param(
            None, type=["null", "string"], pattern=r"^(s3a?://[^/]+/|/|file://).+\.(csv|jsonl|json)$",
            title="Label manifest",
            description="CSV (key,label) or JSON Lines file, s3:// or a local path, labelling objects instead of their "
            "folders. Empty: the folder under the source prefix is the label.",
        ),
        "max_rejected_fraction": Param(
            0.2, type="number", minimum=0, maximum=1, title="Max rejected fraction",
            description="Ingest fails when a larger share of the window's objects is rejected (see the quarantine).",
        ),
        "window_start": Param(
            None, type=["null", "string"], format="date-time", title="Window start (manual runs)",
            description="Take objects modified at or after this instant. Empty: where the last ingest ended.",
        ),
        "window_end": Param(
            None, type=["null", "string"], format="date-time", title="Window end (manual runs)",
            description="Take objects modified before this instant. Empty: the moment the run was triggered.",
        ),
        "require_new_images": Param(
            True, type="boolean", title="Require new images",
            description="Skip features, training and evaluation when the window brought no new images. Turn off to "
            "retrain on the images already in the lake (e.g. with another backbone or classifier).",
        ),
        "backbone": Param(
            "resnet18", enum=sorted(BACKBONES), title="Backbone", description="Frozen torchvision feature extractor.",
        ),
        "weights": Param(
            settings.default_weights(), type="string", minLength=1, title="Backbone weights",
            description="torchvision weights name (DEFAULT, IMAGENET1K_V1), a state-dict file path or s3:// URI, or random:SEED.",
        ),
        "image_size": Param(
            224, type="integer", minimum=32, maximum=1024, title="Image size",
            description="Square input crop fed to the backbone, in pixels (vit_b_16 takes 224 only).",
        ),
        "preprocessing": Param(
            list(DEFAULT_STEPS), type="array", items={"type": "string", "pattern": STEP_PATTERN},
            title="Image preprocessing",
            description="Ordered Pillow steps before the backbone's own transforms: exif_transpose (first), median:SIZE "
            "(odd, 3..15), gaussian:RADIUS (0..10], autocontrast, equalize, pad_to_square (last; keeps the whole "
            "image instead of a centre crop). Empty: none, not even EXIF orientation.",
        ),
        "classifier": Param(
            "logistic_regression", enum=sorted(CLASSIFIERS), title="Classifier",
            description="Spark MLlib classifier: multinomial logistic regression, linear SVM (one-vs-rest for more "
            "than two classes), random forest, or a multilayer perceptron (features standardised first).",
        ),
        "hyperparameters": Param(
            {}, type="object", additionalProperties=False, title="Hyperparameters",
            properties={name: {"type": ["number", "array"]} for name in HYPERPARAMETER_NAMES},
            description="Values for the classifier; a list of values is a grid, searched by cross-validation on the "
            "training split. logistic_regression: reg_param, elastic_net_param, max_iter. linear_svc: reg_param, "
            "max_iter. random_forest: num_trees, max_depth. mlp: hidden_layers (e.g. [128] or [[128], [256, 64]]), "
            "max_iter, step_size. Empty: the defaults. Example: {\"reg_param\": [0.001, 0.01, 0.1]}",
        ),
        "feature_transforms": Param(
            [], type="array", items={"type": "string", "pattern": r"^(standard_scaler|normalizer|pca:[1-9][0-9]*)$"},
            title="Feature transforms",
            description="Applied in order inside the saved model before the classifier: standard_scaler, normalizer, "
            "pca:K (K components, at most the backbone's feature width).",
        ),
        "class_weights": Param(
            "none", enum=["none", "balanced"], title="Class weights",
            description="balanced: weigh each class inversely to its training images (not for mlp).",
        ),
        "selection_folds": Param(
            3, type="integer", minimum=2, maximum=10, title="Cross-validation folds",
            description="Folds used to pick the best point of a hyperparameter grid (unused for a single point).",
        ),
        "training_days": Param(
            None, type=["null", "integer"], minimum=1, title="Training days",
            description="Train only on images of windows that ended in the last N days. Empty: every image ingested "
            "up to the run's window end.",
        ),
        "min_examples_per_class": Param(
            5, type="integer", minimum=1, title="Min examples per class",
            description="Training refuses to start when a class has fewer training images.",
        ),
        "min_accuracy": Param(
            0.8, type=["null", "number"], minimum=0, maximum=1, title="Gate: min test accuracy",
            description="A candidate below this test accuracy is not promoted. Empty: no minimum.",
        ),
        "min_macro_f1": Param(
            None, type=["null", "number"], minimum=0, maximum=1, title="Gate: min macro-F1",
            description="A candidate below this macro-averaged F1 is not promoted. Empty: no minimum.",
        ),
        "min_class_recall": Param(
            None, type=["null", "number"], minimum=0, maximum=1, title="Gate: min recall per class",
            description="Every class with test images must reach this recall. Empty: no per-class check.",
        ),
        "min_test_images": Param(
            10, type="integer", minimum=1, title="Gate: min test images",
            description="A verdict needs at least this many held-out images.",
        ),
        "compare_metric": Param(
            "accuracy", enum=["accuracy", "macro_f1", "weighted_f1"], title="Gate: metric compared with the champion",
            description="The metric the change thresholds below apply to.",
        ),
        "max_drop": Param(
            0.01, type=["null", "number"], minimum=0, maximum=1, title="Gate: max drop vs champion",
            description="How far (absolute) below the champion's value the candidate may fall. Empty: no limit.",
        ),
        "max_relative_drop": Param(
            None, type=["null", "number"], minimum=0, maximum=1, title="Gate: max relative drop vs champion",
            description="How far below the champion's value the candidate may fall, as a fraction of it (0.02 = 2%). "
            "Empty: no limit.",
        ),
        "min_gain": Param(
            None, type=["null", "number"], minimum=0, maximum=1, title="Gate: min gain over champion",
            description="How far (absolute) above the champion's value the candidate must be. Empty: not required.",
        ),
        "executor_cores": Param(
            2, type="integer", minimum=1, maximum=64, title="Spark: cores per executor",
            description="Cores of each executor on a cluster (spark.executor.cores); ignored in local mode.",
        ),
        "executor_memory": Param(
            "2g", type="string", pattern=r"^[1-9][0-9]*[mg]$", title="Spark: memory per executor",
            description="JVM heap of each executor on a cluster, e.g. 2g or 1536m (spark.executor.memory); torch runs "
            "in the Python workers, outside it. Ignored in local mode.",
        ),
        "shuffle_partitions": Param(
            200, type="integer", minimum=1, maximum=100000, title="Spark: shuffle partitions",
            description="Partitions after a shuffle (spark.sql.shuffle.partitions): about 2-3 per executor core of the "
            "cluster; fewer for small windows.",
        ),
        "promote_on_backfill": Param(
            False, type="boolean", title="Promote on backfill",
            description="Let a backfill run move the champion. Off: backfills train, evaluate and write their verdict "
            "but keep the champion.",
        ),
        "force_promote": Param(
            False, type="boolean", title="Force promotion",
            description="Promote the candidate even if it fails its gate, recorded in the history as forced. Needs a "
            "force reason.",
        ),
        "force_reason": Param(
            None, type=["null", "string"], title="Force reason",
            description="Why the gate is overridden; recorded in the promotion history. Required with force promotion.",
        ),
    },
) as dag:

    def spark_job(task_id: str, job: str, args: list[str], conf: dict[str, str] | None = None,
                  **options) -> SparkJobOperator:
        return SparkJobOperator(
            task_id=task_id,
            application=str(JOBS / f"{job}.py"),
            name=f"imagepipe-{job}",
            conn_id="spark_default",
            application_args=args,
            doc_md=orchestration.job_doc(JOBS / f"{job}.py"),
            conf={**settings.cluster_spark_conf(), **RESOURCES, **(conf or {})},
            **options,
        )

    ingest = spark_job(
        "ingest",
        "ingest_images",
        [*RUN, "--source-uri", "{{ params.source_uri }}",
         "--window-start", "{{ window_start(dag_run, params) }}", "--window-end", "{{ window_end(dag_run, params) }}",
         "--label-manifest", "{{ params.label_manifest or '' }}", "--endpoint-url", "{{ s3_endpoint_url() }}",
         "--max-rejected-fraction", "{{ params.max_rejected_fraction }}"],
        outlets=[CURATED_IMAGES],
        # Ingest dedupes against the lake and extract fills the feature space's gaps: two runs doing either at once
        # (backfill runs are not held by the DAG's max_active_runs) could both take the same image.
        max_active_tis_per_dag=1,
    )
    extract = spark_job(
        "extract_features",
        "extract_features",
        [*RUN, "--backbone", "{{ params.backbone }}", "--weights", "{{ params.weights }}",
         "--image-size", "{{ params.image_size }}", "--preprocessing", "{{ params.preprocessing | join(',') }}"],
        conf=settings.extract_features_spark_conf(),  # GPUs, where the cluster has them, for this job only
        pre_execute=functools.partial(orchestration.skip_without_new_images, LAKE_ROOT),
        outlets=[FEATURES],
        max_active_tis_per_dag=1,
    )
    train = spark_job(
        "train",
        "train_classifier",
        [*MODEL_RUN, "--classifier", "{{ params.classifier }}",
         "--hyperparameters", "{{ params.hyperparameters | tojson }}",
         "--feature-transforms", "{{ params.feature_transforms | join(',') }}",
         "--class-weights", "{{ params.class_weights }}", "--selection-folds", "{{ params.selection_folds }}",
         "--training-days", "{{ params.training_days }}", "--min-examples-per-class", "{{ params.min_examples_per_class }}"],
    )
    evaluate = spark_job(
        "evaluate",
        "evaluate_model",
        [*MODEL_RUN, *[
            argument for name in ("min_accuracy", "min_macro_f1", "min_class_recall", "min_test_images", "compare_metric",
                                  "max_drop", "max_relative_drop", "min_gain")
            for argument in (f"--{name.replace('_', '-')}", "{{ params.%s }}" % name)]],
    )

    @task.short_circuit(task_id="gate")
    @orchestration.refusals_fail_at_once
    def gate(run_id=None, params=None) -> bool:
        """Let promotion run only when every check of the candidate's verdict passed, or when the run forces it with
        a reason; the log names each check."""
        return orchestration.verdict_passed(
            LAKE_ROOT, run_id, MODEL_NAME, REGISTRY_URI, params["force_promote"], params["force_reason"]
        )

    promote = spark_job(
        "promote",
        "promote_model",
        [*MODEL_RUN, "--run-type", "{{ run_type(dag_run) }}",
         "--promote-on-backfill", "{{ params.promote_on_backfill }}",
         # The gate has refused a force without a reason; an empty reason means no force.
         "--force-reason", "{{ params.force_reason if params.force_promote and params.force_reason else '' }}"],
    )

    @task(task_id="publish_champion", outlets=[CHAMPION])
    @orchestration.refusals_fail_at_once
    def publish_champion(run_id=None, outlet_events=None) -> None:
        """Update the champion asset, so DAGs scheduled on it (image_batch_scoring) run, only when this run's
        promotion changed the champion; skipped, sending no asset event, when the champion stayed (a backfill)."""
        outlet_events[CHAMPION].extra = orchestration.champion_change(LAKE_ROOT, run_id, MODEL_NAME, REGISTRY_URI)

    ingest >> extract >> train >> evaluate >> gate() >> promote >> publish_champion()
