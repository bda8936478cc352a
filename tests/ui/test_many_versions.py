"""A model with more versions and champion changes than the Models page shows, through Airflow's own app: the page
lists the newest and reads no older version or history entry, and the versions and history pages page through them
all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagepipe.airflow.ui import pages
from imagepipe.lake import Lake
from imagepipe.registry import Registry

from .model_records import MODEL
from .test_pages import MODELS, cells, section

VERSIONS = 7


@pytest.fixture
def many_versions(tmp_path, monkeypatch):
    """Seven versions, each passing and promoted; the Models page shows three of each, the versions and history pages
    four a page."""
    lake = Lake(str(tmp_path / "lake"))
    registry = Registry(lake.registry, MODEL)
    for _ in range(VERSIONS):
        version = registry.allocate_version(f"manual__{_}")
        registry.write_document(version, "metadata", {"version": version, "model_name": MODEL,
                                                      "model": {"classifier": "logistic_regression"}})
        registry.write_document(version, "metrics", {"candidate": {"accuracy": 0.9, "macro_f1": 0.9, "per_class": {}},
                                                     "champion": None})
        registry.write_document(version, "verdict", {"passed": True, "checks": []})
        registry.promote(version, registry.champion_version(), f"manual__{_}", "verdict passed")
    monkeypatch.setenv("IMAGEPIPE_LAKE_ROOT", lake.root)
    monkeypatch.delenv("IMAGEPIPE_REGISTRY_URI", raising=False)
    monkeypatch.setattr(pages, "VERSIONS_SHOWN", 3)
    monkeypatch.setattr(pages, "VERSIONS_PER_PAGE", 4)
    monkeypatch.setattr(pages, "HISTORY_SHOWN", 3)
    monkeypatch.setattr(pages, "HISTORY_PER_PAGE", 4)
    return registry


def break_behind_the_registrys_back(registry: Registry, *names: str) -> None:
    """Old records a page that read them would show as a problem (or fail on)."""
    for name in names:
        (Path(registry.where) / name).write_text("{}")


def listed(page: str) -> list[str]:
    return [row[0].split()[0] for row in cells(page)[1:] if row and row[0].split()[0].isdigit()]


def test_the_models_page_shows_the_newest_versions_and_changes_and_reads_no_older_one(user, many_versions):
    break_behind_the_registrys_back(many_versions, "versions/1/metadata.json", "history/1.json", "history/2.json")

    page = user.get(MODELS).text

    assert listed(page.split("<h3>")[0]) == ["7", "6", "5"]
    assert "The newest 3 of 7 versions;" in page and f'href="{MODELS}/{MODEL}/versions">every version</a>' in page
    assert 'class="problem"' not in page  # version 1 was not read
    assert [row[4] for row in cells(section(page, "Champion history"))[1:]] == ["7", "6", "5"]
    assert "The newest 3 of 7 champion changes;" in page
    assert f'href="{MODELS}/{MODEL}/history">every change</a>' in page
    # A rollback may still name any former champion: the newest entry knows them all.
    assert re.findall(r'<option value="(\d+)"', page) == ["6", "5", "4", "3", "2", "1"]


def test_the_history_page_pages_through_every_champion_change_newest_first(viewer, anonymous, many_versions):
    first = viewer.get(f"{MODELS}/{MODEL}/history")
    second = viewer.get(f"{MODELS}/{MODEL}/history", params={"page": 2})

    assert first.status_code == second.status_code == 200
    assert [row[0] for row in cells(first.text)[1:]] == ["7", "6", "5", "4"]
    assert [row[0] for row in cells(second.text)[1:]] == ["3", "2", "1"]
    assert "7 champion changes, newest first; page 1 of 2" in first.text
    assert re.search(r'href="[^"]*history\?page=2">older</a>', first.text)
    beyond = viewer.get(f"{MODELS}/{MODEL}/history", params={"page": 3})
    assert beyond.status_code == 404 and f"{MODEL} has 2 page(s) of champion changes, not a page 3" in beyond.text
    assert anonymous.get(f"{MODELS}/{MODEL}/history").status_code == 401


def test_a_version_page_reads_only_the_entries_that_made_it_champion(viewer, many_versions):
    break_behind_the_registrys_back(many_versions, "history/1.json", "history/3.json")

    page = viewer.get(f"{MODELS}/{MODEL}/versions/2")

    assert page.status_code == 200
    assert [row[:5] for row in cells(section(page.text, "Champion"))[1:]] == [
        ["2", many_versions.history_entry(2).at, "promotion", "1", "2"]]


def test_the_versions_page_pages_through_every_version_newest_first(viewer, anonymous, many_versions):
    first = viewer.get(f"{MODELS}/{MODEL}/versions")
    second = viewer.get(f"{MODELS}/{MODEL}/versions", params={"page": 2})

    assert first.status_code == second.status_code == 200
    assert listed(first.text) == ["7", "6", "5", "4"] and listed(second.text) == ["3", "2", "1"]
    assert "page 1 of 2" in first.text and re.search(r'href="[^"]*versions\?page=2">older</a>', first.text)
    assert re.search(r'href="[^"]*versions\?page=1">newer</a>', second.text) and ">older<" not in second.text
    beyond = viewer.get(f"{MODELS}/{MODEL}/versions", params={"page": 3})
    assert beyond.status_code == 404 and f"{MODEL} has 2 page(s) of versions, not a page 3" in beyond.text
    # The listing's broken old version shows, with what is wrong with it.
    break_behind_the_registrys_back(many_versions, "versions/1/metadata.json")
    assert 'class="problem"' in viewer.get(f"{MODELS}/{MODEL}/versions", params={"page": 2}).text
    assert anonymous.get(f"{MODELS}/{MODEL}/versions").status_code == 401
