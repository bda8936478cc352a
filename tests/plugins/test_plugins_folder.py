"""Airflow's plugins folder holds Airflow plugins only: its loader imports every file there as a top-level module,
so a library module placed there would be imported a second time under a bare name in every Airflow process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
LIBRARY = PROJECT / "src" / "imagepipe"

# In a fresh interpreter, as an Airflow process starts: load the plugins, then list every top-level module named
# like a library module, with the file it came from.
LOAD_PLUGINS = """
import json, sys
from pathlib import Path
from airflow import plugins_manager

plugins_manager.ensure_plugins_loaded()
library = Path(sys.argv[1]).resolve()
print(json.dumps({
    "errors": plugins_manager.get_import_errors(),
    "library_modules": {
        name: str(Path(module.__file__).resolve())
        for name, module in list(sys.modules.items())
        if name in LIBRARY_STEMS and getattr(module, "__file__", None)
    },
}))
"""


def _load_plugins(plugins_folder: Path, tmp_path: Path) -> dict:
    stems = sorted({path.stem for path in LIBRARY.rglob("*.py")} - {"__init__", "__main__"})
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder), "AIRFLOW_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", f"LIBRARY_STEMS = {stems!r}\n{LOAD_PLUGINS}", str(LIBRARY)],
                            env=env, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_loading_the_projects_plugins_imports_no_library_module_under_a_bare_name(tmp_path):
    loaded = _load_plugins(PROJECT / "plugins", tmp_path)

    assert loaded["errors"] == {}
    assert loaded["library_modules"] == {}


def test_a_library_module_in_a_plugins_folder_would_be_imported_under_its_bare_name(tmp_path):
    """What the first test guards against, shown on a copy: the check sees a library file loaded as `settings`."""
    copy = tmp_path / "plugins" / "lib" / "settings.py"
    copy.parent.mkdir(parents=True)
    shutil.copy(LIBRARY / "settings.py", copy)

    loaded = _load_plugins(copy.parents[1], tmp_path)

    assert loaded["library_modules"].get("settings") == str(copy.resolve())
