"""Reading GLUE-format TSV files: UTF-8, header ``sentence<TAB>label``, no quoting.

Every row is validated; a bad file raises :class:`DataFormatError` naming the file, the
physical line and the reason. Lines end at LF (or CRLF) only, as editors and ``wc -l`` count
them: a form feed, vertical tab, bare CR, U+0085, U+2028 or U+2029 inside a sentence is part
of the sentence (whitespace, collapsed later), not a line break as ``str.splitlines`` makes it.
"""

import codecs
import io
import stat
from pathlib import Path

import pandas as pd

from sentiment_lora.errors import UserError

MAX_SENTENCE_CHARS = 5_000  # SST-2's longest sentence has ~270 characters
HEADER = ("sentence", "label")

# Leading bytes of files that are not UTF-8 text, and what to do about them.
_NOT_TEXT: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "is UTF-32 (byte-order mark): save it as UTF-8"),
    (codecs.BOM_UTF32_BE, "is UTF-32 (byte-order mark): save it as UTF-8"),
    (codecs.BOM_UTF16_LE, "is UTF-16 (byte-order mark): save it as UTF-8"),
    (codecs.BOM_UTF16_BE, "is UTF-16 (byte-order mark): save it as UTF-8"),
    (b"\x1f\x8b", "is a gzip file: decompress it first (gunzip)"),
    (b"PK\x03\x04", "is a zip archive: extract the TSV file first"),
    (b"BZh", "is a bzip2 file: decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "is an xz file: decompress it first (unxz)"),
)


class DataFormatError(UserError):
    """A data file is missing or malformed; names the file and, where known, the line."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


def _short(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters (error messages stay one line)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} chars)"


def split_lines(text: str) -> list[str]:
    """The physical lines of ``text``, endings kept: a line ends after each LF, nowhere else."""
    return io.StringIO(text, newline="\n").readlines()


def line_content(line: str) -> str:
    """``line`` without its ending (LF or CRLF)."""
    return line[:-2] if line.endswith("\r\n") else line.removesuffix("\n")


def check_data_file(path: Path | str) -> Path:
    """``path`` if it is a regular file (or a link to one); :class:`DataFormatError` if not."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            reason = f"a link to {path.readlink()}, which does not exist"
            raise DataFormatError(path, reason) from None
        raise DataFormatError(path, "file not found") from None
    except OSError as exc:
        raise DataFormatError(path, f"cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise DataFormatError(path, "is a directory, not a TSV file")
    if not stat.S_ISREG(mode):
        raise DataFormatError(path, "is not a regular file (a device, pipe or socket?)")
    return path


def _link_note(path: Path) -> str:
    return f" ({path.name} is a link to {path.resolve()})" if path.is_symlink() else ""


def _decode(path: Path, raw: bytes) -> str:
    for magic, reason in _NOT_TEXT:
        if raw.startswith(magic):
            raise DataFormatError(path, reason + _link_note(path), 1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(
            path,
            f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}): is it Latin-1 "
            "or Windows-1252? convert it to UTF-8 (iconv -f latin1 -t utf-8)",
            line,
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DataFormatError(
            path,
            "NUL character: a binary file, or UTF-16 without a byte-order mark? save it as UTF-8",
            text.count("\n", 0, nul) + 1,
        )
    return text


def _check_header(path: Path, first: str) -> None:
    if tuple(first.strip().split("\t")) == HEADER:
        return
    hint = ""
    if first.startswith("sentence\tlabel\r"):
        hint = ": the lines end in a bare CR (old Mac style); convert them to LF"
    elif "\t" not in first and "," in first:
        hint = ": a CSV file? the columns must be separated by a tab"
    raise DataFormatError(
        path,
        f"header must be 'sentence<TAB>label', got {_short(first)}{hint}{_link_note(path)}",
        1,
    )


def _parse_row(path: Path, number: int, line: str) -> tuple[str, int]:
    fields = line.split("\t")
    if len(fields) != 2 or fields[1].strip() not in ("0", "1"):
        _refuse_fields(path, number, fields)
    sentence, label = fields
    if not sentence.strip():
        raise DataFormatError(path, "empty sentence", number)
    if len(sentence) > MAX_SENTENCE_CHARS:
        raise DataFormatError(
            path,
            f"sentence of {len(sentence):,} characters (limit {MAX_SENTENCE_CHARS:,}): "
            "is the file really GLUE TSV?",
            number,
        )
    return sentence, int(label)


def _refuse_fields(path: Path, number: int, fields: list[str]) -> None:
    """Raise the reason a row's fields are wrong (the slow path of :func:`_parse_row`)."""
    if tuple(field.strip() for field in fields) == HEADER:
        raise DataFormatError(
            path, "the header line again (files joined together?): remove it", number
        )
    if len(fields) != 2:
        hint = "a sentence may not contain a tab" if len(fields) > 2 else "no tab before the label"
        raise DataFormatError(
            path, f"expected 2 tab-separated fields, got {len(fields)}: {hint}", number
        )
    raise DataFormatError(path, f"label must be 0 or 1, got {_short(fields[1])}", number)


def read_glue_tsv(path: Path | str) -> pd.DataFrame:
    """Read and validate one GLUE-format SST-2 file into ``sentence``/``label`` columns.

    Accepts a UTF-8 BOM, CRLF line endings and blank lines. Raises :class:`DataFormatError`
    on a missing, unreadable, empty, compressed or non-UTF-8 file (or one that is not a regular
    file), a wrong or repeated header, a row without exactly two tab-separated fields, a label
    other than 0 or 1, or an empty or overlong sentence.
    """
    path = check_data_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, f"cannot be read ({exc.strerror})") from None
    if not raw.strip():
        raise DataFormatError(path, "file is empty")
    lines = [line_content(line) for line in split_lines(_decode(path, raw))]
    _check_header(path, lines[0])
    sentences: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(lines[1:], start=2):
        if line.strip():  # a blank line is not a row
            sentence, label = _parse_row(path, number, line)
            sentences.append(sentence)
            labels.append(label)
    if not sentences:
        raise DataFormatError(path, "no data rows after the header")
    return pd.DataFrame({"sentence": sentences, "label": labels})
