import io

from PIL import Image

from imagepipe import report
from imagepipe.gate import Thresholds, decide

CANDIDATE = {
    "accuracy": 0.9, "macro_f1": 0.88, "weighted_f1": 0.89, "log_loss": 0.31, "rows": 20,
    "per_class": {"beach": {"precision": 1.0, "recall": 0.8, "f1": 0.8889, "support": 10},
                  "forest": {"precision": 0.8333, "recall": 1.0, "f1": 0.9091, "support": 10}},
    "confusion_matrix": {"labels": ["beach", "forest"], "counts": [[8, 2], [0, 10]]},
}
METADATA = {"version": 4, "fingerprint": "resnet18-0123456789abcdef", "preprocessing": ["exif_transpose", "median:3"],
            "model": {"classifier": "mlp", "feature_transforms": ["pca:64"],
                      "fitted_transforms": ["pca:64", "standard_scaler"], "class_weights": "none"},
            "hyperparameters": {"reg_param": 0.01, "max_iter": 100}}
CHAMPION = {**CANDIDATE, "accuracy": 0.85, "version": 3, "log_loss": None,
            "per_class": {"beach": {"recall": 0.7, "f1": 0.8, "support": 10}}}


def test_markdown_report_compares_candidate_and_champion_metric_by_metric():
    verdict = decide(CANDIDATE, CHAMPION, Thresholds())
    text = report.markdown(METADATA, CANDIDATE, CHAMPION, verdict)

    assert text.startswith("# Model version 4: gate PASSED")
    assert "| metric | candidate v4 | champion v3 | change |" in text
    assert "| accuracy | 0.9000 | 0.8500 | 0.0500 |" in text
    assert "| log_loss | 0.3100 | – | – |" in text
    assert "| beach | 10 | 1.0000 | 0.8000 | 0.8889 | 0.7000 | 0.8000 |" in text
    # A class the champion has no row for shows dashes, not a crash.
    assert "| forest | 10 | 0.8333 | 1.0000 | 0.9091 | – | – |" in text
    assert "| PASS | max_drop | accuracy | 0.9000 | 0.8400 |" in text


def test_report_names_the_feature_space_preprocessing_and_model():
    text = report.markdown(METADATA, CANDIDATE, None, decide(CANDIDATE, None, Thresholds()))

    assert "| feature space | resnet18-0123456789abcdef |" in text
    assert "| image preprocessing | exif_transpose, median:3 |" in text
    assert '| hyperparameters | {"max_iter": 100, "reg_param": 0.01} |' in text
    assert "| feature transforms | pca:64 |" in text
    assert "| transforms in the model | pca:64, standard_scaler |" in text


def test_first_model_report_says_there_is_no_champion():
    verdict = decide(CANDIDATE, None, Thresholds())
    text = report.markdown({**METADATA, "version": 1}, CANDIDATE, None, verdict)

    assert "| metric | candidate v1 | none | change |" in text
    assert "- NOTE no champion yet: only the value thresholds apply" in text


def test_html_report_has_the_same_tables_with_labels_escaped():
    tricky = {**CANDIDATE, "per_class": {"<b>cat</b>": CANDIDATE["per_class"]["beach"]}}
    verdict = decide(tricky, None, Thresholds(min_accuracy=0.95))
    page = report.html_page({**METADATA, "version": 2}, tricky, None, verdict)

    assert "<h1>Model version 2: gate FAILED</h1>" in page
    assert "<td>&lt;b&gt;cat&lt;/b&gt;</td>" in page and "<b>cat</b>" not in page
    assert page.count("<table>") == 4


def test_confusion_matrix_names_true_and_predicted_labels_on_its_axes():
    figure = report.confusion_matrix_figure(4, CANDIDATE["confusion_matrix"])
    axes = figure.axes[0]

    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["beach", "forest"]
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["beach", "forest"]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("predicted label", "true label")
    assert sorted(text.get_text() for text in axes.texts) == ["0", "10", "2", "8"]


def test_confusion_matrix_png_is_a_real_image():
    image = Image.open(io.BytesIO(report.confusion_matrix_png(4, CANDIDATE["confusion_matrix"])))

    assert image.format == "PNG" and image.width >= 300 and image.height >= 300
