"""Sentences for ``predict``: one per line, read lazily from a file or a pipe, in batches.

A batch is answered when it is full or, on a pipe or terminal, as soon as no more input is
waiting (:data:`IDLE_WAIT`), so ``tail -f log | sentiment-lora predict -`` answers each line as
it comes. Memory holds one batch and one read chunk, whatever the input's length; a line may
not exceed :data:`MAX_LINE_BYTES`.
"""

import os
import select
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from sentiment_lora.errors import UserError

CHUNK_BYTES = 1 << 16
MAX_LINE_BYTES = 16 << 20
IDLE_WAIT = 0.05  # seconds without input on a pipe before a partial batch is answered
IDLE = None  # what read_lines yields when a pipe has nothing more for now
_BOM = b"\xef\xbb\xbf"


class InputError(UserError):
    """The sentences given to ``predict`` cannot be read as UTF-8 lines; names FILE."""


def _decode(raw: bytes, *, name: str, number: int) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if number == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"FILE: {name}:{number}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


def _ready(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def _read(fd: int, name: str) -> bytes:
    try:
        return os.read(fd, CHUNK_BYTES)
    except OSError as exc:
        raise InputError(f"FILE: {name}: cannot be read ({exc.strerror})") from None


def read_lines(
    fd: int,
    *,
    name: str,
    on_blank: Callable[[int], None] | None = None,
    idle_wait: float = IDLE_WAIT,
) -> Iterator[str | None]:
    """The non-blank lines of ``fd``, decoded as UTF-8, read a chunk at a time.

    On a pipe or terminal, yields :data:`IDLE` when no input arrives for ``idle_wait`` seconds
    (the caller answers what it has; the next read then blocks). A line of only spaces is
    passed to ``on_blank`` (its line number) and skipped; an empty line is skipped. CRLF and a
    leading BOM are accepted. Raises :class:`InputError` naming ``name`` and the line.
    """
    interactive = not stat.S_ISREG(os.fstat(fd).st_mode)
    pending, number = b"", 0
    while True:
        if interactive and not _ready(fd, idle_wait):
            yield IDLE
        chunk = _read(fd, name)
        if not chunk:
            break
        *complete, pending = (pending + chunk).split(b"\n")
        yield from _texts(complete, after=number, name=name, on_blank=on_blank)
        number += len(complete)
        if len(pending) > MAX_LINE_BYTES:
            raise InputError(
                f"FILE: {name}:{number + 1}: a line longer than {MAX_LINE_BYTES >> 20} MiB; "
                "give one sentence per line"
            )
    yield from _texts([pending] if pending else [], after=number, name=name, on_blank=on_blank)


def _texts(
    raws: list[bytes], *, after: int, name: str, on_blank: Callable[[int], None] | None
) -> Iterator[str]:
    """The non-blank lines among ``raws`` (lines ``after + 1``, ``after + 2``, ...)."""
    for number, raw in enumerate(raws, start=after + 1):
        text = _decode(raw, name=name, number=number)
        if text.strip():
            yield text
        elif text and on_blank is not None:
            on_blank(number)


def batched(lines: Iterable[str | None], size: int) -> Iterator[list[str]]:
    """Batches of at most ``size`` lines: full ones, and what there is at each :data:`IDLE`."""
    batch: list[str] = []
    for line in lines:
        if line is not IDLE:
            batch.append(line)
        if batch and (line is IDLE or len(batch) >= size):
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def open_sentences(path: str) -> Iterator[int]:
    """A file descriptor to read sentences from: ``path``, or standard input for ``-``.

    A regular file is read through once first, so a bad line (not UTF-8, too long) is reported
    before anything is predicted; a pipe can only be checked as it streams. Raises
    :class:`InputError` for a missing, unreadable or directory ``path``.
    """
    if path == "-":
        yield 0
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise InputError(f"FILE: {path} not found") from None
    except OSError as exc:
        raise InputError(f"FILE: {path} cannot be opened ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"FILE: {path} is a directory; give a text file, one sentence a line")
        if stat.S_ISREG(mode):
            for _ in read_lines(fd, name=path):
                pass
            os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)
