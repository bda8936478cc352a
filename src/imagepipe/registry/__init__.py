"""Model registry rooted at a URI (s3://bucket/prefix or a local path): numbered immutable versions with the sha256 of
every file, a champion pointer moved by compare-and-swap, and an append-only promotion history.

    versions.py   versions, manifests and run records; files checked against their sha256; Spark models saved and loaded
    champion.py   the champion pointer, promotion and rollback by compare-and-swap, the history; Registry (both)
    cli.py        python -m imagepipe.registry list | show | champion | history | rollback

Storage, with the conditional writes the compare-and-swap needs, is imagepipe.storage's.
"""

from imagepipe.registry.champion import KINDS, ChampionEntry, ChampionMovedError, Registry, open_registry

__all__ = ["KINDS", "ChampionEntry", "ChampionMovedError", "Registry", "open_registry"]
