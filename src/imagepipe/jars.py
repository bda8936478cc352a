"""The jars Spark's jobs load beside pyspark's own (Iceberg's runtime, S3A, the catalog's JDBC drivers), pinned with
their sha256 in jars.lock at the project's root. Fetched from Maven Central at install time only:

    python -m imagepipe.jars fetch     download what the cache lacks, check every file against its pin

into IMAGEPIPE_JARS_DIR (default ~/.cache/imagepipe/jars, kept between installs like pip's cache). Jobs take the
files from there (paths()) and never reach the network: a missing or altered jar is refused in one line.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

from imagepipe.errors import InputError
from imagepipe.settings import PROJECT_ROOT

MAVEN = "https://repo1.maven.org/maven2"
# A download cut off part-way is tried again from the start after a pause, this many times in all.
DOWNLOAD_ATTEMPTS = 4
RETRY_PAUSE_S = 5.0


class Jar(NamedTuple):
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url_path(self) -> str:
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


def lock_file() -> Path:
    return Path(os.environ.get("IMAGEPIPE_JARS_LOCK", PROJECT_ROOT / "jars.lock"))


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imagepipe" / "jars"
    return Path(os.environ.get("IMAGEPIPE_JARS_DIR", default))


def pinned(lock: Path | None = None) -> list[Jar]:
    lock = lock or lock_file()
    jars = []
    for number, line in enumerate(lock.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            coordinates, sha256 = line.split()
            group, artifact, version = coordinates.split(":")
        except ValueError:
            raise InputError(f"{lock} line {number} is not 'group:artifact:version sha256': {line}") from None
        jars.append(Jar(group, artifact, version, sha256.lower()))
    return jars


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def paths() -> list[str]:
    """The pinned jars' files in the cache, in the lock's order. Checked by size and presence only (hashing 700 MB
    at every job start would cost seconds); fetch() checked their sha256 when it placed them."""
    folder = cache_dir()
    found = [folder / jar.file_name for jar in pinned()]
    missing = [path.name for path in found if not path.is_file()]
    if missing:
        raise InputError(f"Spark's jars {', '.join(missing)} are not in {folder}: run `make install` "
                         "(python -m imagepipe.jars fetch) on this machine first")
    return [str(path) for path in found]


def fetch(repository: str = MAVEN) -> list[Path]:
    """Download each pinned jar the cache lacks (or holds with another checksum) and check it; a download whose
    sha256 is not the pinned one is deleted and refused."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    placed = []
    for jar in pinned():
        target = folder / jar.file_name
        if not (target.is_file() and _sha256(target) == jar.sha256):
            partial = target.with_suffix(".part")
            url = f"{repository.rstrip('/')}/{jar.url_path}"
            print(f"fetching {url}", file=sys.stderr)
            _download(url, partial)
            actual = _sha256(partial)
            if actual != jar.sha256:
                partial.unlink()
                raise InputError(f"{url} has sha256 {actual}, not the {jar.sha256} pinned in {lock_file()}; "
                                 "nothing was installed")
            partial.replace(target)
        placed.append(target)
    return placed


def _download(url: str, target: Path) -> None:
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            urllib.request.urlretrieve(url, target)
            return
        except OSError as error:  # a refused or dropped connection, a short body (ContentTooShortError)
            target.unlink(missing_ok=True)
            if attempt == DOWNLOAD_ATTEMPTS:
                raise InputError(f"{url} could not be downloaded ({error}) after {attempt} attempts: check the "
                                 "network or IMAGEPIPE_MAVEN_REPOSITORY and run `make install` again") from error
            print(f"{url}: {error}; trying again ({attempt} of {DOWNLOAD_ATTEMPTS} attempts failed)", file=sys.stderr)
            time.sleep(RETRY_PAUSE_S)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["fetch"]:
        sys.exit("usage: python -m imagepipe.jars fetch")
    try:
        for path in fetch(os.environ.get("IMAGEPIPE_MAVEN_REPOSITORY", MAVEN)):
            print(path)
    except InputError as error:
        sys.exit(f"imagepipe.jars: error: {error}")


if __name__ == "__main__":
    main()
