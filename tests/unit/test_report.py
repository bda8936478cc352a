import io
import re

from ui.model_records import many_classes

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
            "hyperparameters": {"reg_param": 0.01, "max_iter": 100},
            "backbone": {"backbone": "timm:tf_efficientnet_lite0", "library": "timm 1.0.31",
                         "weights": "s3://weights/lite0-tuned.pth", "weights_kind": "fine-tuned",
                         "weights_sha256": "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "image_size": 96}}
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
    assert ("| backbone | timm:tf_efficientnet_lite0 (timm 1.0.31), fine-tuned weights s3://weights/lite0-tuned.pth "
            "(sha256 9f8e7d6c), 96 px |") in text
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


HOSTILE = "<script>alert(1)</script>"


def _example(sha256: str, label: str, predicted: str, probability: float | None) -> dict:
    return {"sha256": sha256, "label": label, "predicted": predicted, "probability": probability, "window_id": "w",
            "thumbnail": f"thumbnails/{sha256}.jpg"}


GALLERY = {"thumbnail_side": 96, "probabilities": True, "misclassified_total": 2, "correct_each": 3,
           "correct_classes": 2, "classes_tested": 2,
           "misclassified": [_example("a1", "beach", HOSTILE, 0.91), _example("a2", HOSTILE, "beach", 0.55)],
           "correct": [_example("b1", "beach", "beach", 0.99)]}


def test_html_report_shows_misclassified_images_with_true_and_predicted_label_and_probability():
    verdict = decide(CANDIDATE, CHAMPION, Thresholds())
    page = report.html_page(METADATA, CANDIDATE, CHAMPION, verdict, GALLERY)

    assert "<h2>Misclassified test images (2)</h2><p>All 2, the most confident mistakes first.</p>" in page
    figures = re.findall(r"<figure>(.*?)</figure>", page)
    assert figures[0] == ("<img src='thumbnails/a1.jpg' width='96' height='96' "
                          "alt='true: beach, predicted: &lt;script&gt;alert(1)&lt;/script&gt;, p = 0.91'>"
                          "<figcaption>true: beach<br>predicted: &lt;script&gt;alert(1)&lt;/script&gt;<br>p = 0.91"
                          "</figcaption>")
    assert "<figcaption>beach<br>p = 0.99</figcaption>" in figures[2]
    assert HOSTILE not in page


def test_a_classifier_without_probabilities_shows_none():
    linear = {**GALLERY, "probabilities": False,
              "misclassified": [{**row, "probability": None} for row in GALLERY["misclassified"]]}
    page = report.html_page(METADATA, CANDIDATE, None, decide(CANDIDATE, None, Thresholds()), linear)

    assert "This classifier gives no probabilities." in page
    assert "<figcaption>true: beach<br>predicted: &lt;script&gt;alert(1)&lt;/script&gt;</figcaption>" in page


def test_an_image_the_lake_no_longer_held_at_evaluation_is_listed_without_a_picture():
    gone = {**GALLERY, "correct": [{**GALLERY["correct"][0], "thumbnail": None}]}
    page = report.html_page(METADATA, CANDIDATE, None, decide(CANDIDATE, None, Thresholds()), gone)

    assert ("<figure><span>no picture: the lake no longer holds the image</span>"
            "<figcaption>beach<br>p = 0.99</figcaption></figure>") in page


def test_markdown_report_lists_the_pictures_and_the_gallery():
    verdict = decide(CANDIDATE, CHAMPION, Thresholds())
    text = report.markdown(METADATA, CANDIDATE, CHAMPION, verdict, GALLERY, ("per_class.png",))

    assert "## Precision and recall per class\n\n![Precision and recall per class](per_class.png)" in text
    assert "| ![](thumbnails/a2.jpg) | true: <script>alert(1)</script>; predicted: beach; p = 0.55 |" in text


def test_a_report_of_several_hundred_classes_stays_bounded_and_readable():
    from PIL import Image

    candidate, gallery = many_classes(400)
    verdict = decide(candidate, None, Thresholds())
    files = report.files({**METADATA, "version": 7}, candidate, None, verdict, gallery)
    page = files["report.html"].decode()

    assert len(page) < 250_000
    assert len(re.findall(r"<img ", page)) == 2 + 60 + 60  # the charts, and the gallery's capped thumbnails
    assert "The 60 most confident of 900 mistakes" in page
    assert "for the 60 classes with the lowest F1 (of 400)" in page
    # The per-class table is folded into a block that scrolls; the short tables are not.
    assert re.search(r"<h2>Per class \(test split\)</h2>\n<details><summary>400 rows</summary><div class='scroll'>",
                     page)
    assert page.count("<details>") == 1
    for name in ("per_class.png", "confusion_matrix.png"):
        with Image.open(io.BytesIO(files[name])) as picture:
            assert max(picture.size) <= 1600, name
        assert len(files[name]) < 400_000, name


def test_a_label_holding_a_pipe_or_a_line_break_stays_inside_its_markdown_cell():
    tricky = {**CANDIDATE, "per_class": {"cats|dogs": CANDIDATE["per_class"]["beach"],
                                         "two\nlines": CANDIDATE["per_class"]["forest"]}}
    text = report.markdown(METADATA, tricky, None, decide(tricky, None, Thresholds()))

    assert "| cats\\|dogs | 10 | 1.0000 | 0.8000 | 0.8889 |" in text
    assert "| two lines | 10 | 0.8333 | 1.0000 | 0.9091 |" in text
    # Every row of the per-class table has as many cells as its header (unescaped pipes only).
    table = text.split("| class |", 1)[1].split("\n\n", 1)[0].splitlines()
    widths = {len(re.split(r"(?<!\\)\|", line)) for line in table[1:]}
    assert len(widths) == 1, table


def test_a_version_trained_before_backbones_were_recorded_shows_a_dash():
    older = {key: value for key, value in METADATA.items() if key != "backbone"}

    assert "| backbone | – |" in report.markdown(older, CANDIDATE, None, decide(CANDIDATE, None, Thresholds()))


def test_the_gates_row_count_reads_as_a_count_not_a_rate():
    text = report.markdown(METADATA, CANDIDATE, None, decide(CANDIDATE, None, Thresholds(min_test_images=10)))

    assert "| PASS | min_test_images | rows | 20 | 10 |" in text
