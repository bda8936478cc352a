"""Every run parameter, declared once (imagepipe.run_param): name, default, JSON Schema of its value, title and
description. The trigger forms (imagepipe.airflow.forms), the jobs' options and the DAG's arguments for them derive
from these. Rules across fields (a hyperparameter the chosen classifier does not take, pca:K above the backbone's width,
min_side above max_side) stay with the job.
Light: standard library and the library's light tables; DAG files import it at parse.
"""

from __future__ import annotations

from imagepipe import drift, settings
from imagepipe.classifiers import CLASS_WEIGHTS, CLASSIFIERS, HYPERPARAMETERS, TRANSFORM_PATTERN, ModelSpec
from imagepipe.featurizer import backbones
from imagepipe.finetune.config import AUGMENTATION_PATTERN, MAX_FREEZE, OPTIMIZERS, FinetuneConfig
from imagepipe.gate import COMPARABLE_METRICS, Thresholds
from imagepipe.images import ValidationBounds
from imagepipe.preprocessing import DEFAULT_STEPS, STEP_PATTERN
from imagepipe.run_param import REQUIRED, Job, ResolvedParam, RunParam
from imagepipe.windows import WATERMARK


def form_fields(*parts: RunParam | Job) -> dict[str, RunParam]:
    """A form's declarations by name: the given ones and the params of the given jobs, in order, each once."""
    declared: dict[str, RunParam] = {}
    for part in parts:
        for param in part.params if isinstance(part, Job) else (part,):
            if declared.setdefault(param.name, param) is not param:
                raise ValueError(f"two different params are named {param.name}; give one of them another name")
    return declared


S3_PREFIX_PATTERN = r"^s3a?://[^/]+/.*$"
MANIFEST_PATTERN = r"^(s3a?://[^/]+/|/|file://).+\.(csv|jsonl|json)$"
WEIGHTS_PATTERN = r"^(random:[0-9]+|(?!random).+)$"  # random weights need their seed
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MEMORY_PATTERN = r"^[1-9][0-9]*[mg]$"
FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
OPTIONAL_FRACTION = {**FRACTION, "type": ["null", "number"]}
POSITIVE = {"type": "integer", "minimum": 1}
OPTIONAL_INSTANT = {"type": ["null", "string"], "format": "date-time"}

# ingest_images
SOURCE_URI = RunParam(
    "source_uri", settings.default_source_uri, {"type": "string", "pattern": S3_PREFIX_PATTERN}, "Source URI",
    "S3 prefix holding <label>/<image> objects, e.g. s3://bucket/images/")
LABEL_MANIFEST = RunParam(
    "label_manifest", None, {"type": ["null", "string"], "pattern": MANIFEST_PATTERN}, "Label manifest",
    "CSV (key,label) or JSON Lines file, s3:// or a local path, labelling objects instead of their folders. Empty: "
    "the folder under the source prefix is the label.")
MAX_REJECTED_FRACTION = RunParam(
    "max_rejected_fraction", 0.2, FRACTION, "Max rejected fraction",
    "Ingest fails when a larger share of the window's objects is rejected (see the quarantine).")
MIN_SIDE = RunParam("min_side", ValidationBounds.min_side, POSITIVE, "Min side",
                    "images with a shorter side, in pixels, are rejected")
MAX_SIDE = RunParam("max_side", ValidationBounds.max_side, POSITIVE, "Max side",
                    "images with a longer side, in pixels, are rejected")
MAX_PIXELS = RunParam("max_pixels", ValidationBounds.max_pixels, POSITIVE, "Max pixels",
                      "images with more pixels are rejected (a decompression bomb guard)")
FETCH_THREADS = RunParam("fetch_threads", 16, POSITIVE, "Fetch threads",
                         "concurrent object fetches per Spark task (and connections in its pool)")
# extract_features
BACKBONE = RunParam(
    "backbone", settings.default_backbone, {"enum": backbones.choices()}, "Backbone",
    "Feature extractor: a torchvision model (resnet18, ...) or any timm model as timm:<model>[.<pretrained tag>], "
    "e.g. timm:convnext_tiny.fb_in22k; its pooled features, its own resize, crop and normalisation.")
WEIGHTS = RunParam(
    "weights", settings.default_weights, {"type": "string", "minLength": 1, "pattern": WEIGHTS_PATTERN},
    "Backbone weights",
    "DEFAULT (the backbone's pretrained weights: torchvision's, or the timm tag's from the Hugging Face cache), a "
    "torchvision weights name (IMAGENET1K_V1) or timm tag, a state-dict file path or s3:// URI, or random:SEED.")
IMAGE_SIZE = RunParam(
    "image_size", None, {"type": ["null", "integer"], "minimum": 32, "maximum": 1024}, "Image size",
    "Square input crop fed to the backbone, in pixels. Empty: the backbone's own (224 for torchvision's, a timm "
    "model's pretrained size). A backbone with a fixed input size (vit_b_16, most timm ViTs) takes that size only.")
PREPROCESSING = RunParam(
    "preprocessing", list(DEFAULT_STEPS), {"type": "array", "items": {"type": "string", "pattern": STEP_PATTERN}},
    "Image preprocessing",
    "Ordered Pillow steps before the backbone's own transforms: exif_transpose (first), median:SIZE (odd, 3..15), "
    "gaussian:RADIUS (0..10]), autocontrast, equalize, pad_to_square (last; keeps the whole image instead of a "
    "centre crop). Empty: none, not even EXIF orientation.")
BATCH_SIZE = RunParam("batch_size", 64, POSITIVE, "Batch size", "images per Arrow batch handed to the backbone")
FINETUNE_FIRST = RunParam(
    "finetune", False, {"type": "boolean"}, "Fine-tune the backbone first",
    "Run finetune_backbone (the Fine-tune params below) on the lake's labelled images, starting from the backbone "
    "weights above, then extract features with the weights it wrote (the run's finetune record): a feature space of "
    "its own. Off: features come from the backbone weights as they are.")
# finetune_backbone
FINETUNE_EPOCHS = RunParam("finetune_epochs", FinetuneConfig.epochs, {"type": "integer", "minimum": 1, "maximum": 1000},
                           "Fine-tune: epochs", "Most passes over the training images (see patience).")
FINETUNE_LEARNING_RATE = RunParam(
    "finetune_learning_rate", FinetuneConfig.learning_rate, {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "Fine-tune: learning rate", "Starting learning rate, decayed to zero along a cosine over the epochs.")
FINETUNE_BATCH_SIZE = RunParam("finetune_batch_size", FinetuneConfig.batch_size,
                               {"type": "integer", "minimum": 2, "maximum": 4096}, "Fine-tune: batch size",
                               "Training images per step in each process (batch norm needs two or more).")
FINETUNE_OPTIMIZER = RunParam("finetune_optimizer", FinetuneConfig.optimizer, {"enum": list(OPTIMIZERS)},
                              "Fine-tune: optimizer", "adamw, or sgd with Nesterov momentum 0.9.")
FINETUNE_FREEZE = RunParam(
    "finetune_freeze", FinetuneConfig.freeze, {"type": "integer", "minimum": 0, "maximum": MAX_FREEZE},
    "Fine-tune: frozen blocks", "How many of the backbone's first blocks keep their weights: 0 none, 1 the stem, 2 "
    "the stem and the first stage, ...; all of them (5 for a ResNet) trains the head alone.")
FINETUNE_AUGMENTATION = RunParam(
    "finetune_augmentation", list(FinetuneConfig.augmentation),
    {"type": "array", "items": {"type": "string", "pattern": AUGMENTATION_PATTERN}}, "Fine-tune: augmentation",
    "Random changes to training images after their preprocessing: random_resized_crop:MIN_SCALE (0..1], "
    "horizontal_flip, color_jitter:STRENGTH (0..1]. Without a random crop, images are cropped as extraction does.")
FINETUNE_PATIENCE = RunParam("finetune_patience", FinetuneConfig.patience, POSITIVE, "Fine-tune: patience",
                             "Stop after this many epochs without a better validation accuracy; the best is kept.")
FINETUNE_LABEL_SMOOTHING = RunParam(
    "finetune_label_smoothing", FinetuneConfig.label_smoothing, {"type": "number", "minimum": 0, "maximum": 0.5},
    "Fine-tune: label smoothing", "Share of each training label's weight spread over the other classes (0: none).")
FINETUNE_PROCESSES = RunParam("finetune_processes", 1, {"type": "integer", "minimum": 1, "maximum": 256},
                              "Fine-tune: processes", "TorchDistributor's processes: one per GPU, else on the CPUs.")
# train_classifier
CLASSIFIER = RunParam(
    "classifier", ModelSpec.classifier, {"enum": sorted(CLASSIFIERS)}, "Classifier",
    "Spark MLlib classifier: multinomial logistic regression, linear SVM (one-vs-rest for more than two classes), "
    "random forest, or a multilayer perceptron (features standardised first).")
HYPERPARAMETERS_PARAM = RunParam(
    "hyperparameters", {},
    {"type": "object", "additionalProperties": False,
     "properties": {name: hyperparameter.schema for name, hyperparameter in HYPERPARAMETERS.items()}},
    "Hyperparameters",
    "Values for the classifier; a list of values is a grid, searched by cross-validation on the training split. "
    + " ".join(f"{name}: {', '.join(f'{key} ({value})' for key, value in kind.defaults.items())}."
               for name, kind in CLASSIFIERS.items())
    + ' hidden_layers of a grid: [[128], [256, 64]]. Empty: the defaults. Example: {"reg_param": [0.001, 0.01, 0.1]}')
FEATURE_TRANSFORMS = RunParam(
    "feature_transforms", [], {"type": "array", "items": {"type": "string", "pattern": TRANSFORM_PATTERN}},
    "Feature transforms", "Applied in order inside the saved model before the classifier: standard_scaler, "
    "normalizer, pca:K (K components, at most the backbone's feature width).")
CLASS_WEIGHTS_PARAM = RunParam(
    "class_weights", ModelSpec.class_weights, {"enum": list(CLASS_WEIGHTS)}, "Class weights",
    "balanced: weigh each class inversely to its training images (not for mlp).")
SELECTION_FOLDS = RunParam(
    "selection_folds", ModelSpec.folds, {"type": "integer", "minimum": 2, "maximum": 10}, "Cross-validation folds",
    "Folds used to pick the best point of a hyperparameter grid (unused for a single point).")
TRAINING_DAYS = RunParam(
    "training_days", None, {"type": ["null", "integer"], "minimum": 1}, "Training days",
    "Train only on images of windows that ended in the last N days. Empty: every image ingested up to the run's "
    "window end.")
TRAIN_AS_OF_VERSION = RunParam(
    "train_as_of_version", None, {"type": ["null", "integer"], "minimum": 1}, "Train as of version",
    "Train on exactly the rows version N trained on: its feature space, window end and training days, each lake "
    "table read at the snapshot N recorded (time travel), whatever was ingested since. Empty: the run's own data.")
MIN_EXAMPLES_PER_CLASS = RunParam("min_examples_per_class", 5, POSITIVE, "Min examples per class",
                                  "Training refuses to start when a class has fewer training images.")
# evaluate_model: the gate's thresholds, with the gate's own defaults
GATE = (
    RunParam("min_accuracy", Thresholds.min_accuracy, OPTIONAL_FRACTION, "Gate: min test accuracy",
             "A candidate below this test accuracy is not promoted. Empty: no minimum."),
    RunParam("min_macro_f1", Thresholds.min_macro_f1, OPTIONAL_FRACTION, "Gate: min macro-F1",
             "A candidate below this macro-averaged F1 is not promoted. Empty: no minimum."),
    RunParam("min_class_recall", Thresholds.min_class_recall, OPTIONAL_FRACTION, "Gate: min recall per class",
             "Every class with test images must reach this recall. Empty: no per-class check."),
    RunParam("min_test_images", Thresholds.min_test_images, POSITIVE, "Gate: min test images",
             "A verdict needs at least this many held-out images."),
    RunParam("compare_metric", Thresholds.compare_metric, {"enum": list(COMPARABLE_METRICS)},
             "Gate: metric compared with the champion", "The metric the change thresholds below apply to."),
    RunParam("max_drop", Thresholds.max_drop, OPTIONAL_FRACTION, "Gate: max drop vs champion",
             "How far (absolute) below the champion's value the candidate may fall. Empty: no limit."),
    RunParam("max_relative_drop", Thresholds.max_relative_drop, OPTIONAL_FRACTION,
             "Gate: max relative drop vs champion", "How far below the champion's value the candidate may fall, as "
             "a fraction of it (0.02 = 2%). Empty: no limit."),
    RunParam("min_gain", Thresholds.min_gain, OPTIONAL_FRACTION, "Gate: min gain over champion",
             "How far (absolute) above the champion's value the candidate must be. Empty: not required."),
    RunParam("allow_label_change", Thresholds.allow_label_change, {"type": "boolean"}, "Gate: allow a label change",
             "Let a candidate whose labels differ from the champion's (a class added or removed) pass; the verdict "
             "records the change as allowed. Off: such a candidate fails its gate's label_set check."),
)
# promote_model
PROMOTE_ON_BACKFILL = RunParam(
    "promote_on_backfill", False, {"type": "boolean"}, "Promote on backfill",
    "Let a backfill run move the champion. Off: backfills train, evaluate and write their verdict but keep the "
    "champion.")
# every model job; a field of the scoring form
MODEL_NAME = RunParam("model_name", settings.DEFAULT_MODEL_NAME, {"type": "string", "pattern": MODEL_NAME_PATTERN},
                      "Model", "Name of the model in the registry; scoring labels the images with its champion.")
SCORING_SOURCE_URI = RunParam(
    "source_uri", settings.default_scoring_uri, {"type": "string", "pattern": S3_PREFIX_PATTERN}, "Images to label",
    "S3 prefix of the unlabelled images, e.g. s3://bucket/inbox/; every object under it is scored.")
SCORING_WINDOW = (
    RunParam("window_start", None, OPTIONAL_INSTANT, "Modified from",
             "Score only objects modified at or after this instant. Empty: from the first."),
    RunParam("window_end", None, OPTIONAL_INSTANT, "Modified before",
             "Score only objects modified before this instant. Empty: up to the listing."),
)
# score_images: drift of the batch from the champion's reference (imagepipe.drift), thresholds on its PSIs
PSI = {"type": "number", "exclusiveMinimum": 0}
DRIFT = (
    RunParam("drift_class_mix_psi", drift.Thresholds.class_mix, PSI, "Drift: max class-mix PSI",
             "The batch's predicted-class mix against the champion's on its held-out images; above this PSI the run "
             "raises a drift alarm (0.25: the usual significant shift)."),
    RunParam("drift_top_probability_psi", drift.Thresholds.top_probability, PSI, "Drift: max top-probability PSI",
             "The distribution of the chosen label's probability against the champion's on its held-out images "
             "(not for linear_svc, which has none)."),
    RunParam("drift_feature_psi", drift.Thresholds.features, PSI, "Drift: max feature PSI",
             "The largest PSI of the batch's features along the champion's training principal components."),
    RunParam("drift_min_images", drift.Thresholds.min_images, POSITIVE, "Drift: min images",
             "Fewer scored images get no drift verdict: PSI over so few is mostly chance."),
)

# The ingest window: scheduled and backfill runs take their data interval, manual runs these fields or, empty, from
# where the last ingest ended to the trigger's moment (the DAG's window_start and window_end macros decide).
INSTANT = {"type": "string", "format": "date-time"}
WINDOW = (
    ResolvedParam("window_start", None, OPTIONAL_INSTANT, "Window start (manual runs)",
                  "Take objects modified at or after this instant. Empty: where the last ingest ended.",
                  macro="window_start", job_schema=INSTANT, keywords=(WATERMARK,), job_default=WATERMARK),
    ResolvedParam("window_end", None, OPTIONAL_INSTANT, "Window end (manual runs)",
                  "Take objects modified before this instant. Empty: the moment the run was triggered.",
                  macro="window_end", job_schema=INSTANT, job_default=REQUIRED),
)
INGEST = Job("ingest_images", (SOURCE_URI, LABEL_MANIFEST, MAX_REJECTED_FRACTION, *WINDOW),
             (MIN_SIDE, MAX_SIDE, MAX_PIXELS, FETCH_THREADS))
EXTRACT = Job("extract_features", (BACKBONE, WEIGHTS, IMAGE_SIZE, PREPROCESSING, FINETUNE_FIRST), (BATCH_SIZE,))
FINETUNE = Job("finetune_backbone", (BACKBONE, WEIGHTS, IMAGE_SIZE, PREPROCESSING, FINETUNE_EPOCHS,
                                      FINETUNE_LEARNING_RATE, FINETUNE_BATCH_SIZE, FINETUNE_OPTIMIZER, FINETUNE_FREEZE,
                                      FINETUNE_AUGMENTATION, FINETUNE_PATIENCE, FINETUNE_LABEL_SMOOTHING,
                                      FINETUNE_PROCESSES, TRAINING_DAYS,
                                      MIN_EXAMPLES_PER_CLASS))
TRAIN = Job("train_classifier", (CLASSIFIER, HYPERPARAMETERS_PARAM, FEATURE_TRANSFORMS, CLASS_WEIGHTS_PARAM,
                                 SELECTION_FOLDS, TRAINING_DAYS, TRAIN_AS_OF_VERSION, MIN_EXAMPLES_PER_CLASS))
EVALUATE = Job("evaluate_model", GATE)
PROMOTE = Job("promote_model", (PROMOTE_ON_BACKFILL,))
SCORE = Job("score_images", (SCORING_SOURCE_URI, *SCORING_WINDOW, MODEL_NAME, *DRIFT), (FETCH_THREADS, BATCH_SIZE))

# The pipeline's form fields that reach no job's arguments: the DAG reads them itself.
REQUIRE_NEW_IMAGES = RunParam(
    "require_new_images", True, {"type": "boolean"}, "Require new images",
    "Skip features, training and evaluation when the window brought no new images. Turn off to retrain on the "
    "images already in the lake (e.g. with another backbone or classifier).")
RETRAIN_MIN_NEW_SHARE = RunParam(
    "retrain_min_new_share", 0.0, {"type": "number", "minimum": 0, "maximum": 1}, "Retrain after new images",
    "Train only when the images new since the champion's training are at least this share of the images it was "
    "trained on (0.05: 5 %); below it the run keeps the champion and skips training, evaluation and promotion. 0: "
    "every run trains. A run without a champion, in another feature space, with other classifier settings or "
    "triggered by a drift alarm always trains.")
# Spark conf of every job of the run, not job arguments
SPARK_RESOURCES = (
    RunParam("executor_cores", 2, {"type": "integer", "minimum": 1, "maximum": 64}, "Spark: cores per executor",
             "Cores of each executor on a cluster (spark.executor.cores); ignored in local mode."),
    RunParam("executor_memory", "2g", {"type": "string", "pattern": MEMORY_PATTERN}, "Spark: memory per executor",
             "JVM heap of each executor on a cluster, e.g. 2g or 1536m (spark.executor.memory); torch runs in the "
             "Python workers, outside it. Ignored in local mode."),
    RunParam("shuffle_partitions", 200, {"type": "integer", "minimum": 1, "maximum": 100000},
             "Spark: shuffle partitions", "Partitions after a shuffle (spark.sql.shuffle.partitions): about 2-3 per "
             "executor core of the cluster; fewer for small windows."),
)
FORCE = (
    RunParam("force_promote", False, {"type": "boolean"}, "Force promotion",
             "Promote the candidate even if it fails its gate, recorded in the history as forced. Needs a force "
             "reason."),
    RunParam("force_reason", None, {"type": ["null", "string"]}, "Force reason",
             "Why the gate is overridden; recorded in the promotion history. Required with force promotion."),
)
# The pipeline's trigger form, in its order: each job's params, then the fields the DAG itself reads. A dataset's
# run defaults (imagepipe.datasets) are values of these fields.
PIPELINE_FORM = (INGEST, *WINDOW, REQUIRE_NEW_IMAGES, RETRAIN_MIN_NEW_SHARE, EXTRACT, FINETUNE, TRAIN, EVALUATE,
                 *SPARK_RESOURCES, PROMOTE, *FORCE)
# forget_image (image_forget): which image, and why
SHA256_PATTERN = r"^[0-9a-f]{64}$"
FORGET = Job("forget_image", (
    RunParam("image_key", None, {"type": ["null", "string"], "minLength": 1, "maxLength": 1024}, "Image key",
             "Object key the image was ingested from, e.g. images/beach/IMG_0001.jpg. Give it or the sha256."),
    RunParam("image_sha256", None, {"type": ["null", "string"], "pattern": SHA256_PATTERN}, "Image sha256",
             "sha256 of the image's bytes (64 lower-case hex digits). Give it or the key."),
    RunParam("forget_reason", REQUIRED, {"type": "string", "minLength": 5}, "Reason",
             "Why the image is forgotten (a person's request, a withdrawn licence); recorded in the lake."),
))
# image_classifier_rollback
ROLLBACK = (
    RunParam("target_version", None, {"type": ["null", "integer"], "minimum": 1}, "Target version",
             "Version to make champion again. Empty: the version that was champion before the current one."),
    RunParam("reason", REQUIRED, {"type": "string", "minLength": 5}, "Reason",
             "Why the champion is rolled back; recorded in the promotion history."),
)
