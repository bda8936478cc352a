"""The pages as an Airflow user sees them, through Airflow's own app and auth, over records the library wrote (on a
local path and on the S3 endpoint): what each page shows, that a script-like label stays text, and that only files a
version's manifest lists are served."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest

from .model_records import FINGERPRINT, FOREST, HOSTILE, QUARANTINED, RETRAIN_REASON, ROLLBACK_REASON

MODELS = "/imagepipe/models"


def version_url(version: int) -> str:
    return f"{MODELS}/image_classifier/versions/{version}"


def run_url(run_id: str, dag_id: str = "image_classifier_pipeline") -> str:
    return f"/imagepipe/runs/{dag_id}/{quote(run_id, safe='')}"


def cells(page: str) -> list[list[str]]:
    """The page's table rows as lists of cell texts (tags stripped, entities decoded, spaces collapsed)."""
    rows = re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    return [[" ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
             for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S)] for row in rows]


def section(page: str, heading: str) -> str:
    """The page from the heading that starts with `heading` to the next heading."""
    start = re.search(rf"<h[1-3][^>]*>\s*{re.escape(heading)}", page)
    assert start, f"no heading {heading!r}"
    end = re.search(r"<h[1-3]", page[start.end():])
    return page[start.end():start.end() + end.start()] if end else page[start.end():]


def row_starting(page: str, *first: str) -> list[str]:
    found = [row for row in cells(page) if row[:len(first)] == list(first)]
    assert found, f"no row starting {first} in {cells(page)}"
    return found[0]


def test_anonymous_requests_to_every_page_are_refused(anonymous, records):
    for path in ["/imagepipe/", MODELS, version_url(1), f"{version_url(1)}/files/report.html", run_url(records.run(1)),
                 "/imagepipe/no/such/page", "/imagepipe/models/image_classifier/nothing"]:
        answer = anonymous.get(path)
        assert answer.status_code == 401, path  # before any routing answer: no 404 tells what exists
        assert answer.headers["content-type"].startswith("text/html") and "<h1>Log in first</h1>" in answer.text
        assert "image_classifier" not in answer.text
    assert anonymous.post("/imagepipe/dags/image_classifier_rollback/runs",
                          data={"reason": "anonymous rollback"}).status_code == 401


def test_models_page_shows_the_champion_how_it_got_there_every_version_and_the_history(viewer, records):
    page = viewer.get(MODELS)

    assert page.status_code == 200
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())
    assert (f"Champion: version 1 rollback since {records.registry.champion().at}, from version 3, by alice: "
            f"{ROLLBACK_REASON}") in text
    first_run = records.run(1)
    assert row_starting(page.text, "1 champion") == [
        "1 champion", "PASSED", "0.9000", "0.8800", FINGERPRINT, "logistic_regression",
        records.registry.manifest(1)["created_at"], first_run]
    assert row_starting(page.text, "2")[1:4] == ["FAILED", "0.6000", "0.5800"]
    assert row_starting(page.text, "3")[1:4] == ["PASSED", "0.9500", "0.9300"]
    assert f'href="/dags/image_classifier_pipeline/runs/{quote(first_run, safe="")}" target="_top"' in page.text
    history = cells(section(page.text, "Champion history"))[1:]
    assert [tuple(row[2:6]) for row in history] == [
        ("rollback", "3", "1", "alice"), ("promotion", "1", "3", f"run {records.run(3)}"),
        ("promotion", "none", "1", f"run {first_run}")]
    # The reason is the user's text: shown, never interpreted.
    assert "&lt;b&gt;forest&lt;/b&gt;" in page.text and "<b>forest</b>" not in page.text


def test_version_page_shows_the_report_its_picture_the_gate_checks_and_every_file_with_its_sha256(viewer, records):
    page = viewer.get(version_url(2))

    assert page.status_code == 200
    assert row_starting(page.text, "backbone") == [
        "backbone", "timm:tf_efficientnet_lite0 (timm 1.0.31), pretrained weights "
        "/weights/lite0_ünïcödé-标签.pth (sha256 1433548b), 224 px"]
    # The metadata block shows its text as written, not as \u escapes.
    [metadata_block] = [html.unescape(block) for block in re.findall(r"<pre>(.*?)</pre>", page.text, re.DOTALL)]
    assert '"weights": "/weights/lite0_ünïcödé-标签.pth"' in metadata_block and "\\u" not in metadata_block
    assert row_starting(page.text, "accuracy") == ["accuracy", "0.6000", "0.9000", "-0.3000"]
    assert row_starting(page.text, "FAIL", "min_accuracy") == ["FAIL", "min_accuracy", "accuracy", "0.6000", "0.8000"]
    assert row_starting(page.text, "FAIL", "max_drop")[3:] == ["0.6000", "0.8900"]
    assert row_starting(page.text, "PASS", "label_set") == ["PASS", "label_set", "labels added or removed", "0", "0"]
    manifest = records.registry.manifest(2)["files"]
    for name in ("metadata.json", "metrics.json", "verdict.json", "report.html", "confusion_matrix.png"):
        assert row_starting(page.text, name) == [name, str(manifest[name]["size"]), manifest[name]["sha256"]]
    pictures = re.findall(r'<h2>([^<]+)</h2>\s*<img class="picture" src="([^"]+)"', page.text)
    assert pictures == [(title, f"{version_url(2)}/files/{name}") for title, name in [
        ("Candidate against champion", "comparison.png"), ("Precision and recall per class", "per_class.png"),
        ("Confusion matrix", "confusion_matrix.png")]]
    for _, picture in pictures:
        served = viewer.get(picture)
        assert served.headers["content-type"] == "image/png"
        assert served.content == records.registry.read_file(2, picture.rpartition("/")[2])


def test_version_page_shows_the_gallery_of_test_images_from_thumbnails_in_the_version(viewer, records):
    page = viewer.get(version_url(2))

    mistakes = section(page.text, "Misclassified test images (16)")
    assert "The 5 most confident of 16 mistakes; the confusion matrix counts them all." in mistakes
    shown = records.registry.document(2, "metrics")["gallery"]
    figures = re.findall(r'<img class="thumbnail" src="([^"]+)".*?<figcaption>(.*?)</figcaption>', mistakes, re.S)
    assert [(source, " ".join(caption.split())) for source, caption in figures] == [
        (f"{version_url(2)}/files/thumbnails/{row['sha256']}.jpg",
         f"true: beach<br>predicted: {FOREST}<br>p = {row['probability']:.2f}") for row in shown["misclassified"]]
    correct = section(page.text, "Correctly classified test images")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>p = 0.95" in correct
    assert correct.count('<img class="thumbnail"') == len(shown["correct"]) == 6
    for source, _ in figures:
        served = viewer.get(source)
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert served.content == records.registry.read_file(2, source.split("/files/")[1])
        assert served.content.startswith(b"\xff\xd8")  # a JPEG


def test_a_label_named_like_a_script_is_shown_as_text_on_every_page(viewer, records):
    for path in [version_url(1), run_url(records.run(2))]:  # per-class rows, new images per label, quarantined keys
        page = viewer.get(path)
        assert page.status_code == 200
        assert HOSTILE not in page.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
    support = records.registry.document(1, "metrics")["candidate"]["per_class"][HOSTILE]["support"]
    assert row_starting(viewer.get(version_url(1)).text, HOSTILE)[:2] == [HOSTILE, str(support)]


def test_the_stored_report_is_served_without_running_scripts(viewer, records):
    served = viewer.get(f"{version_url(1)}/files/report.html")

    assert served.status_code == 200
    assert served.content == records.registry.read_file(1, "report.html")
    assert served.headers["content-security-policy"].startswith("sandbox allow-same-origin; default-src 'none'")


@pytest.mark.parametrize("path", [
    "manifest.json",  # in the version's folder, but no file the manifest lists
    "../../champion.json", "..%2F..%2Fchampion.json", "%2e%2e/%2e%2e/champion.json", "model%2F..%2Fmetadata.json",
    "thumbnails/0000.jpg", "thumbnails%2F..%2Freport.html",  # not written into this version
])
def test_files_the_manifest_does_not_list_are_not_found(viewer, records, path):
    answer = viewer.get(f"{version_url(1)}/files/{path}")

    assert answer.status_code == 404
    assert "not found" in answer.text.lower() and '"sequence"' not in answer.text and '"files"' not in answer.text


@pytest.mark.parametrize("path", [f"{MODELS}/..%2F..%2Fregistry/versions/1", f"{MODELS}/other/versions/1",
                                  version_url(9), f"{version_url(9)}/files/report.html"])
def test_unknown_models_and_versions_are_not_found(viewer, records, path):
    assert viewer.get(path).status_code == 404


def test_run_tab_shows_what_the_run_did(viewer, records):
    page = viewer.get(run_url(records.run(2)))

    assert page.status_code == 200
    assert "Window [2026-11-20T00:00:00+00:00, 2026-11-21T00:00:00+00:00)" in page.text
    assert row_starting(page.text, "130") == ["130", "120", "3", "2", "3", "2"]
    quarantined = {tuple(row) for row in cells(page.text) if len(row) == 2 and row[0].startswith("images/")}
    assert quarantined == set(QUARANTINED)
    for kind, count in [("conflicting labels", 2), ("too small", 1), ("undecodable", 1)]:
        assert f"Quarantined: {kind} ({count})" in page.text
    assert "120 feature rows computed this run" in page.text
    assert f"Due: {RETRAIN_REASON}" in html.unescape(page.text)  # why it trained (retrain_min_new_share)
    assert row_starting(page.text, "303") == ["303", "36", "40"]  # train, validation, test rows of the candidate
    assert row_starting(page.text, "accuracy") == ["accuracy", "0.6000", "0.9000"]
    gate = [row for row in cells(page.text) if row and row[0] in ("PASSED", "FAILED") and len(row) == 6]
    assert [(row[0], row[1], row[3], row[4]) for row in gate] == [
        ("PASSED", "min_test_images", "40", "10"), ("FAILED", "min_accuracy", "0.6", "0.8"),
        ("PASSED", "label_set", "0", "0"), ("FAILED", "max_drop", "0.6", "0.89")]
    label_set = row_starting(page.text, "PASSED", "label_set")
    assert label_set[5] == "added: -; removed: - (the same 3 labels as champion v1)"
    assert "version 2 not promoted: its gate failed" in page.text


def test_run_tab_says_how_the_promotion_went(viewer, records):
    assert "version 3 became champion (was version 1)" in viewer.get(run_url(records.run(3))).text


def test_run_tab_of_another_dag_or_an_unknown_run_says_so(viewer, records):
    other = viewer.get(run_url(records.run(1), dag_id="image_batch_scoring"))
    assert other.status_code == 404
    assert "this tab shows the outcome of a pipeline run (image_classifier_pipeline or" in other.text
    unknown = viewer.get(run_url("manual__never"))
    assert unknown.status_code == 404 and "run manual__never has no window record" in unknown.text


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_path_is_a_not_found_page_in_airflows_frame(viewer, records, method):
    answer = viewer.request(method, "/imagepipe/no/such/page")

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in answer.text and "no page at /imagepipe/no/such/page" in answer.text


def test_models_page_says_when_the_last_candidate_failed_its_gate(viewer, tmp_path, monkeypatch):
    from .model_records import add_refused_candidate, build_first_champion_only

    monkeypatch.setenv("IMAGEPIPE_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
    records = build_first_champion_only(str(tmp_path / "lake"))
    first = viewer.get(MODELS).text
    assert "Champion: " in first and "Last candidate" not in first  # the newest candidate is the champion
    version = add_refused_candidate(records)

    page = viewer.get(MODELS).text

    failed = [check["name"] for check in records.registry.document(version, "verdict")["checks"] if not check["passed"]]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert failed and (f"Last candidate: version {version} FAILED not promoted, failed {', '.join(failed)} "
                       f"(run {records.run(2)} )") in text  # the run id is a link: its tag reads as a space here


def test_models_page_shows_the_champions_drift_over_its_last_scoring_runs(viewer, anonymous, records, tmp_path,
                                                                          monkeypatch):
    from .model_records import add_drift_runs

    assert "No batch scoring run has judged drift yet." in viewer.get(MODELS).text
    assert viewer.get(f"{MODELS}/image_classifier/drift.png").status_code == 404
    # A catalog of this test's own: the drift table it writes is seen by no other test.
    monkeypatch.setenv("IMAGEPIPE_CATALOG_URI", f"jdbc:sqlite:{tmp_path / 'catalog.sqlite'}")
    add_drift_runs(records)

    page = viewer.get(MODELS).text

    drift = section(page, "Drift in batch scoring")
    assert f'<img src="{MODELS}/image_classifier/drift.png"' in drift
    rows = cells(drift)
    assert rows[0] == ["scored", "run", "champion", "images", "class mix PSI", "top probability PSI", "feature PSI",
                       "drift"]
    assert rows[1] == ["2026-11-27 08:00", "scoring__5", "1", "12", "–", "–", "–",
                       "not judged: 12 images scored, fewer than the 100 a drift verdict needs (drift_min_images)"]
    assert rows[2] == ["2026-11-26 08:00", "scoring__4", "1", "150", "0.610 / 0.25", "0.120 / 0.25",
                       "1.870 / 0.25", "ALARM"]
    assert rows[3][-1] == "OK" and len(rows) == 6  # the five newest runs, newest first
    chart = viewer.get(f"{MODELS}/image_classifier/drift.png")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG") and len(chart.content) > 10_000
    assert anonymous.get(f"{MODELS}/image_classifier/drift.png").status_code == 401
