"""The datasets file: what a user declares becomes datasets with their own names, lake folders and models, and every
mistake is refused in one line that names the entry and what to do."""

from __future__ import annotations

import textwrap

import pytest

from imagepipe import datasets
from imagepipe.errors import InputError

TWO = """
    [datasets.default]
    source_uri = "s3://imagepipe-samples/images/"

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


def test_each_declared_dataset_has_its_own_lake_folder_model_and_dag_ids(tmp_path):
    default, holiday = declared(tmp_path, TWO)

    assert (default.name, default.schedule, default.defaults) == ("default", "0 0 * * *", {})
    assert (holiday.name, holiday.source_uri, holiday.schedule) == ("holiday", "s3://my-photos/holiday/", "0 3 * * *")
    assert holiday.defaults == {"image_size": 64, "backbone": "resnet50"}
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
     "dataset 'holiday': unknown key 'sourceuri'; known keys: defaults, label_manifest, schedule, scoring_uri, "
     "source_uri"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\nschedule = "every day"\n',
     "dataset 'holiday': schedule 'every day' is neither a cron expression (e.g. '0 3 * * *') nor one of @daily, "
     "@hourly, @monthly, @once, @weekly, @yearly, none"),
    ('[datasets.holiday]\nsource_uri = "photos/holiday"\n',
     "dataset 'holiday': source_uri: 'photos/holiday' does not match '^s3a?://[^/]+/.*$'"),
    ('[datasets.holiday]\nschedule = "@daily"\n',
     "dataset 'holiday': source_uri is missing; give the S3 prefix of its labelled images"),
    ('[datasets.Holiday-2]\nsource_uri = "s3://b/p/"\n',
     "dataset 'Holiday-2': a name is 1 to 40 lower-case letters, digits and _, starting with a letter"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday.defaults]\nimage_size = 8\n',
     "dataset 'holiday': defaults: image_size: 8 is less than the minimum of 32"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday.defaults]\nimage_sise = 64\n',
     "dataset 'holiday': defaults: unknown field 'image_sise'; defaults are fields of the pipeline's trigger form"),
    ('[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday.defaults]\nsource_uri = "s3://b/q/"\n',
     "dataset 'holiday': defaults: unknown field 'source_uri'; set it as the dataset's source_uri"),
    ('[dataset.holiday]\nsource_uri = "s3://b/p/"\n',
     "unknown top-level key 'dataset'; datasets go under [datasets.<name>]"),
    ("", "no dataset declared; add a [datasets.<name>] table"),
])
def test_a_mistake_is_refused_in_one_line_naming_the_entry(tmp_path, text, message):
    assert refusal(tmp_path, text) == message


def test_a_dataset_declared_twice_is_refused_with_its_line(tmp_path):
    text = '[datasets.holiday]\nsource_uri = "s3://b/p/"\n[datasets.holiday]\nsource_uri = "s3://b/q/"\n'
    assert refusal(tmp_path, text) == "Cannot declare ('datasets', 'holiday') twice (at line 3, column 18)"


def test_a_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(InputError, match="no datasets file; declare at least one dataset"):
        datasets.load(tmp_path / "absent.toml")
