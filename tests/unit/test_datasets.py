"""The datasets file: what a user declares becomes datasets with their own names, lake folders and models, and every
mistake is refused in one line that names the entry and what to do."""

from __future__ import annotations

import textwrap

import pytest

from imagepipe import datasets
from imagepipe.errors import InputError

TWO = """
    [datasets.holiday]
    source_uri = "s3://my-photos/holiday/"
    schedule = "0 3 * * *"
    scoring_uri = "s3://my-photos/inbox/"
    [datasets.holiday.defaults]
    image_size = 64
    backbone = "resnet50"
"""


def declared(tmp_path, text: str) -> list[datasets.Dataset]:
    path = tmp_path / "datasets.toml"
    path.write_text(textwrap.dedent(text))
    return datasets.load(path)


def refusal(tmp_path, text: str) -> str:
    with pytest.raises(InputError) as refused:
        declared(tmp_path, text)
    message = str(refused.value)
    assert "\n" not in message
    return message.removeprefix(f"{tmp_path / 'datasets.toml'}: ")


def test_each_declared_dataset_has_its_own_lake_folder_model_and_dag_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEPIPE_SOURCE_URI", "s3://demo/images/")
    monkeypatch.setenv("IMAGEPIPE_SCHEDULE", "0 * * * *")
    default, holiday = declared(tmp_path, TWO)

    # The default dataset is always there, set by the environment as before datasets existed.
    assert (default.name, default.source_uri, default.schedule) == ("default", "s3://demo/images/", "0 * * * *")
    assert default.form_defaults() == {}
    assert (holiday.name, holiday.source_uri, holiday.schedule) == ("holiday", "s3://my-photos/holiday/", "0 3 * * *")
    assert holiday.form_defaults() == {"source_uri": "s3://my-photos/holiday/", "image_size": 64,
                                       "backbone": "resnet50"}
    # The default dataset is the lake and registry as they were: nothing moves.
    assert default.lake_root("/data/lake") == "/data/lake"
    assert default.model_name == "image_classifier"
    assert default.suffixed("image_classifier_pipeline") == "image_classifier_pipeline"
    assert holiday.lake_root("/data/lake") == "/data/lake/datasets/holiday"
    assert holiday.lake_root("s3a://lake/root") == "s3a://lake/root/datasets/holiday"
    assert holiday.model_name == "holiday"
    assert holiday.suffixed("image_classifier_pipeline") == "image_classifier_pipeline__holiday"


@pytest.mark.parametrize("text, message", [
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\nsourceuri = "s3://b/q/"\n',
     "dataset 'holiday': unknown key 'sourceuri'; known keys: defaults, label_manifest, notify, retrain_on_drift, "
     "schedule, scoring_uri, source_uri"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\nretrain_on_drift = "yes"\n',
     "dataset 'holiday': retrain_on_drift must be true or false, not 'yes'"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\nschedule = "every day"\n',
     "dataset 'holiday': schedule 'every day' is neither a cron expression (e.g. '0 3 * * *') nor one of @daily, "
     "@hourly, @monthly, @weekly, @yearly, none"),
    ('[datasets.holiday]\nsource_uri = "photos/holiday"\n',
     "dataset 'holiday': source_uri: 'photos/holiday' does not match '^s3a?://[^/]+/.*$'"),
    ('[datasets.holiday]\nschedule = "@daily"\n',
     "dataset 'holiday': source_uri is missing; give the S3 prefix of its labelled images"),
    ('[datasets.Holiday-2]\nsource_uri = "s3://b/p/"\n',
     "dataset 'Holiday-2': a name is 1 to 40 lower-case letters, digits and _, starting with a letter, and not "
     "'image_classifier' (the default dataset's model)"),
    ('[datasets.default]\nsource_uri = "s3://b/p/"\n',
     "dataset 'default': the default dataset is not declared here; IMAGEPIPE_SOURCE_URI, IMAGEPIPE_SCHEDULE and "
     "IMAGEPIPE_SCORING_URI set it"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday.defaults]\nimage_size = 8\n',
     "dataset 'holiday': defaults: image_size: 8 is less than the minimum of 32"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday.defaults]\nimage_sise = 64\n',
     "dataset 'holiday': defaults: unknown field 'image_sise'; defaults are fields of the pipeline's trigger form"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday.defaults]\nsource_uri = "s3://b/q/"\n',
     "dataset 'holiday': defaults: unknown field 'source_uri'; set it as the dataset's source_uri"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday.notify]\ngate_failed = ["ml@example.com"]\n',
     "dataset 'holiday': notification target 'ml@example.com' is not email:<address>, slack:<connection id> or "
     "webhook:<connection id>"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday.notify]\npromoted = ["webhook:deploy"]\n',
     "dataset 'holiday': notify: unknown event 'promoted'; events: champion_change, gate_failed, run_failed, drift"),
    ('[dataset.holiday]\nsource_uri = "s3://b/p/"\n',
     "unknown top-level key 'dataset'; datasets go under [datasets.<name>]"),
])
def test_a_mistake_is_refused_in_one_line_naming_the_entry(tmp_path, text, message):
    assert refusal(tmp_path, text) == message


def test_a_dataset_names_who_hears_what_by_target_and_the_default_dataset_takes_the_environments(tmp_path,
                                                                                                monkeypatch):
    from imagepipe.subscriptions import Target

    monkeypatch.setenv("IMAGEPIPE_NOTIFY_DRIFT", "slack:ml_alerts")
    default, holiday = declared(tmp_path, TWO + """
    [datasets.holiday.notify]
    gate_failed = ["email:ml-team@example.com"]
    champion_change = ["webhook:deploy_hook", "email:ml-team@example.com"]
""")
    assert default.notify == {"drift": (Target("slack", "ml_alerts"),)}
    assert holiday.notify == {"gate_failed": (Target("email", "ml-team@example.com"),),
                              "champion_change": (Target("webhook", "deploy_hook"),
                                                  Target("email", "ml-team@example.com"))}


def test_a_dataset_declared_twice_is_refused_with_its_line(tmp_path):
    text = '[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday]\nsource_uri = "s3://b/q/"\n'
    assert refusal(tmp_path, text) == "Cannot declare ('datasets', 'holiday') twice (at line 3, column 18)"


def test_without_a_file_or_an_entry_the_default_dataset_is_the_only_one(tmp_path):
    assert [dataset.name for dataset in datasets.load(tmp_path / "absent.toml")] == ["default"]
    assert [dataset.name for dataset in declared(tmp_path, "# nothing declared yet\n")] == ["default"]


def test_add_appends_a_checked_entry_and_leaves_the_file_alone_on_a_mistake(tmp_path, monkeypatch, capsys):
    path = tmp_path / "datasets.toml"
    path.write_text("# our datasets\n")
    monkeypatch.setenv("IMAGEPIPE_DATASETS_FILE", str(path))

    assert datasets.main(["add", "scans", "--source-uri", "s3://scans/labelled/", "--schedule", "@hourly"]) == 0
    assert "make run DATASET=scans" in capsys.readouterr().out
    scans = datasets.named("scans")
    assert (scans.source_uri, scans.schedule, scans.scoring_uri) == ("s3://scans/labelled/", "@hourly", None)
    assert path.read_text().startswith("# our datasets\n")
    kept = path.read_text()

    for argv, line in [
        (["add", "scans", "--source-uri", "s3://b/p/"], "dataset 'scans' is already declared; pick another name"),
        (["add", "more", "--source-uri", "s3://b/p/", "--schedule", "hourly"], "schedule 'hourly' is neither"),
        (["add", "more", "--source-uri", "b/p"], "dataset 'more': source_uri: 'b/p' does not match"),
    ]:
        assert datasets.main(argv) == 2
        error = capsys.readouterr().err
        assert line in error and error.count("\n") == 1 and str(path) in error
        assert path.read_text() == kept
    assert [dataset.name for dataset in datasets.load()] == ["default", "scans"]


def test_a_dag_or_a_model_leads_back_to_its_dataset(tmp_path, monkeypatch, capsys):
    path = tmp_path / "datasets.toml"
    path.write_text(textwrap.dedent(TWO))
    monkeypatch.setenv("IMAGEPIPE_DATASETS_FILE", str(path))

    assert datasets.of_dag("image_classifier_rollback__holiday", "image_classifier_rollback").name == "holiday"
    assert datasets.of_dag("image_classifier_pipeline", "image_classifier_pipeline").name == "default"
    assert datasets.of_dag("image_classifier_pipeline__elsewhere", "image_classifier_pipeline") is None
    assert datasets.of_dag("image_batch_scoring__holiday", "image_classifier_pipeline") is None
    assert datasets.of_model("holiday").name == "holiday"
    assert datasets.of_model("image_classifier").name == "default"
    assert datasets.of_model("by_hand") is None
    assert datasets.main(["list", "nowhere"]) == 2
    assert "no dataset named 'nowhere'" in capsys.readouterr().err
