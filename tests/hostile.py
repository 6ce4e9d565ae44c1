"""Hostile and careless data files (the outside tester's kinds, issue 15), each with the
``file:line: reason`` the GLUE reader must give."""

import gzip
from pathlib import Path

GOOD = "sentence\tlabel\na fine film\t1\n"

# kind -> (bytes, a link target, or None for a directory; what follows the path in the error)
HOSTILE: dict[str, tuple[bytes | Path | None, str]] = {
    "float-label": (
        (GOOD + "a poor film\t0.0\n").encode(),
        ":3: label must be 0 or 1, got '0.0'",
    ),
    "tab-in-sentence": (
        (GOOD + "a poor\tfilm\t0\n").encode(),
        ":3: expected 2 tab-separated fields, got 3: a sentence may not contain a tab",
    ),
    "header-again": (
        (GOOD + "sentence\tlabel\na poor film\t0\n").encode(),
        ":3: the header line again (files joined together?)",
    ),
    "latin-1": (
        (GOOD + "caf\u00e9 film\t0\n").encode("latin-1"),
        ":3: invalid UTF-8 (byte 0xe9 at offset 32): is it Latin-1",
    ),
    "utf-16": ((GOOD + "a poor film\t0\n").encode("utf-16"), ":1: is UTF-16 (byte-order mark)"),
    "utf-16-no-bom": (GOOD.encode("utf-16-le"), ":1: NUL character: a binary file, or UTF-16"),
    "gzip": (gzip.compress(GOOD.encode()), ":1: is a gzip file: decompress it first"),
    "csv": (
        b"sentence,label\na film,1\n",
        ":1: header must be 'sentence<TAB>label', got 'sentence,label': a CSV file?",
    ),
    "bare-cr": (
        b"sentence\tlabel\ra film\t1\r",
        ":1: header must be 'sentence<TAB>label', got "
        "'sentence\\tlabel\\ra film\\t1\\r': the lines end in a bare CR",
    ),
    "link-to-etc-passwd": (Path("/etc/passwd"), ":1: header must be 'sentence<TAB>label'"),
    "directory": (None, ": is a directory, not a TSV file"),
}


def make_hostile(path: Path, kind: str) -> str:
    """Create ``path`` as the hostile ``kind``; returns the error message it must get."""
    content, expected = HOSTILE[kind]
    if content is None:
        path.mkdir()
    elif isinstance(content, Path):
        path.symlink_to(content)
    else:
        path.write_bytes(content)
    return f"{path}{expected}"
