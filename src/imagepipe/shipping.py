"""The imagepipe library's core as a --py-files archive, so Spark executors on a cluster run the code the Airflow
worker has; the Airflow and dev layers (imagepipe.airflow, imagepipe.dev) stay out: no job needs them.

The archive is built when a Spark task executes (SparkJobOperator.execute sets its py_files), not at DAG parse, not
while templates render and not into the image: a code change reaches the executors with the next task, with no
image rebuild. It is named by a hash of its contents, so concurrent tasks on the same code share one file and a
changed library gets a new one.

    python -m imagepipe.shipping      # builds it and prints its path, for spark-submit by hand
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from imagepipe import settings, storage

PACKAGE_DIR = Path(__file__).resolve().parent
NOT_SHIPPED = ("airflow", "dev")  # the layers above the core (see imagepipe/__init__.py)
# A fixed timestamp makes the archive's bytes depend on the code alone.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def build_archive(package_dir: Path, out_dir: Path) -> Path:
    """Zip the package's core Python sources and its text data (timm's model names) under its own name, without
    caches and without the NOT_SHIPPED layers, into out_dir as <name>-<hash>.zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sorted([*package_dir.rglob("*.py"), *package_dir.rglob("*.txt")]):
            if "__pycache__" in source.parts or source.relative_to(package_dir).parts[0] in NOT_SHIPPED:
                continue
            entry = zipfile.ZipInfo(f"{package_dir.name}/{source.relative_to(package_dir).as_posix()}", _ZIP_DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, source.read_bytes())
    content = buffer.getvalue()
    target = out_dir / f"{package_dir.name}-{hashlib.sha256(content).hexdigest()[:16]}.zip"
    if not target.exists():
        storage.atomic_write(target, content)  # a concurrent task never sees half an archive
    return target


def py_files_archive() -> str:
    """Path of the archive of the imagepipe library this process imports, built if missing."""
    return str(build_archive(PACKAGE_DIR, settings.data_dir() / "py_files"))


if __name__ == "__main__":
    print(py_files_archive())
