"""The installed environment is one that works, and the requirement files say what goes where: pyspark-client's files
overwrite pyspark's own, so a version mismatch breaks every pandas UDF; runtime and development requirements are two
files pinned under one lock (constraints.txt, from make lock)."""

from importlib.metadata import version

from packaging.utils import canonicalize_name

from requirement_files import DEVELOPMENT, LOCK, PROJECT, RUNTIME, TEST_TOOLS, pinned_version, pulled_in, read

# pip freeze (make lock) leaves out the installer's own tools; torch needs setuptools, which every venv has.
INSTALLER_TOOLS = {"pip", "setuptools", "wheel"}


def _lock() -> dict[str, str]:
    pins = (line.split("==") for line in (PROJECT / LOCK).read_text().splitlines() if "==" in line)
    return {canonicalize_name(name): pin.strip() for name, pin in pins}


def test_pyspark_and_pyspark_client_versions_agree():
    assert version("pyspark") == version("pyspark-client")


def test_pyspark_and_torch_are_the_pinned_releases():
    runtime = read(RUNTIME)
    assert version("pyspark") == pinned_version(runtime["pyspark"])
    assert version("torch") == pinned_version(runtime["torch"])


def test_each_requirement_is_pinned_exactly_in_one_file_and_the_lock_agrees():
    runtime, development, locked = read(RUNTIME), read(DEVELOPMENT), _lock()
    assert runtime.keys().isdisjoint(development.keys())
    for name, requirement in {**runtime, **development}.items():
        assert pinned_version(requirement), f"{requirement} is not pinned with =="
        assert locked.get(name) == pinned_version(requirement), f"{LOCK} pins {name} at {locked.get(name)}: make lock"


def test_the_lock_pins_everything_both_files_pull_in():
    everything = pulled_in([*read(RUNTIME).values(), *read(DEVELOPMENT).values()])
    unpinned = everything - _lock().keys() - INSTALLER_TOOLS
    assert unpinned == set(), f"{LOCK} lacks {sorted(unpinned)}: run make lock"


def test_the_test_tools_are_development_requirements():
    # The image installs requirements.txt alone: tests/deploy checks that it pulls in none of these.
    assert TEST_TOOLS <= read(DEVELOPMENT).keys()
