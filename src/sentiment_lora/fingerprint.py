"""Content fingerprints for cache keys and output directories."""

import hashlib
from functools import lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def fingerprint(*parts: object) -> str:
    """Short SHA-256 of the parts' reprs, in order."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:20]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of every module of this package: any change to the logic changes every cache key."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(_PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
