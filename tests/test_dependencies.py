"""The installed environment is one that works: pyspark-client's files overwrite pyspark's own, so a version
mismatch breaks every pandas UDF."""

from importlib.metadata import version
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"


def test_pyspark_and_pyspark_client_versions_agree():
    assert version("pyspark") == version("pyspark-client")


def test_pyspark_is_the_pinned_release():
    pinned = {line.split("==")[0]: line.split("==")[1].strip() for line in REQUIREMENTS.read_text().splitlines() if "==" in line}
    assert version("pyspark") == pinned["pyspark"]
    assert version("torch") == pinned["torch"]
