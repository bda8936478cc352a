"""The project's requirement files as data: what each pins, and every distribution a set of requirements pulls in,
resolved from this environment's installed metadata (the same lock the Docker image installs under)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = Path(__file__).resolve().parents[1]
RUNTIME, DEVELOPMENT, LOCK = "requirements.txt", "requirements-dev.txt", "constraints.txt"
# Tools that only tests and development use: none of them belongs in the image.
TEST_TOOLS = {"pytest", "pytest-xdist", "moto", "ruff", "selenium"}


def read(name: str) -> dict[str, Requirement]:
    """The requirements a file lists, by canonical name."""
    lines = (PROJECT / name).read_text().splitlines()
    parsed = [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {canonicalize_name(requirement.name): requirement for requirement in parsed}


def pinned_version(requirement: Requirement) -> str | None:
    """The version of an exact `==` pin, None for anything looser."""
    specifiers = list(requirement.specifier)
    return specifiers[0].version if len(specifiers) == 1 and specifiers[0].operator == "==" else None


def pulled_in(requirements: list[Requirement]) -> set[str]:
    """Canonical names of the requirements and of everything they depend on, extras followed, on this platform."""
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        name, extras = canonicalize_name(requirement.name), frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            metadata = distribution(name)
        except PackageNotFoundError as missing:
            raise AssertionError(f"{name} is required but not installed: run make install") from missing
        for line in metadata.requires or []:
            dependency = Requirement(line)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra})
                                                for extra in extras | {""}):
                pending.append(dependency)
    return {name for name, _ in seen}
