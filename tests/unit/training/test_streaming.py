"""predict's input: lines read lazily, batches answered when full or when a pipe pauses."""

import inspect
import os
import threading
from pathlib import Path

import pytest

from sentiment_lora.training import streaming
from sentiment_lora.training.streaming import (
    CHUNK_BYTES,
    IDLE,
    InputError,
    batched,
    open_sentences,
    read_lines,
)


def _lines(path: Path, **kwargs) -> list[str | None]:
    with open_sentences(str(path)) as fd:
        return list(read_lines(fd, name=str(path), **kwargs))


def test_blank_lines_crlf_a_bom_and_a_last_line_without_newline(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(b"\xef\xbb\xbfa fine film\r\n\n   \nan awful film\r\nno newline at the end")
    blank: list[int] = []
    assert _lines(src, on_blank=blank.append) == [
        "a fine film",
        "an awful film",
        "no newline at the end",
    ]
    assert blank == [3]  # spaces only: warned; an empty line is skipped silently


def test_a_file_is_read_a_chunk_at_a_time_in_bounded_batches(tmp_path: Path) -> None:
    src = tmp_path / "many.txt"
    src.write_text("".join(f"sentence number {i}\n" for i in range(100_000)))
    with open_sentences(str(src)) as fd:
        lines = read_lines(fd, name=str(src))
        assert inspect.isgenerator(lines)
        batches = batched(lines, 64)
        first = next(batches)
        assert os.lseek(fd, 0, os.SEEK_CUR) <= CHUNK_BYTES  # one chunk read, not the file
        sizes = [len(first)] + [len(batch) for batch in batches]
    assert first[0] == "sentence number 0"
    assert max(sizes) == 64 and sum(sizes) == 100_000
    assert len(sizes) == -(-100_000 // 64)  # full batches: a file never pauses


def test_a_pipe_that_pauses_gets_its_partial_batch_answered(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"one\ntwo\n")  # and the pipe stays open
    batches = batched(read_lines(read_end, name="-"), 64)
    got: list[list[str]] = []
    reader = threading.Thread(target=lambda: got.append(next(batches)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    try:
        assert got == [["one", "two"]], "a partial batch waited for more input"
        os.write(write_end, b"three\n")
        os.close(write_end)
        assert list(batches) == [["three"]]
    finally:
        os.close(read_end)


def test_batched_answers_at_each_pause_and_never_exceeds_the_size() -> None:
    lines = ["a", "b", IDLE, IDLE, "c", "d", "e", "f", "g", IDLE, "h"]
    assert list(batched(lines, 3)) == [["a", "b"], ["c", "d", "e"], ["f", "g"], ["h"]]


def test_bad_input_is_named_with_its_line_before_anything_is_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\ncaf\xe9\n")
    with pytest.raises(InputError, match=rf"^FILE: {bad}:3: not valid UTF-8"):
        with open_sentences(str(bad)):
            raise AssertionError("a file with a bad line was opened for prediction")


def test_an_overlong_line_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 100)
    long = tmp_path / "long.txt"
    long.write_text("short\n" + "word " * 1000 + "\n")
    with pytest.raises(InputError, match=rf"^FILE: {long}:2: a line longer than"):
        _lines(long)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a directory; give a text file"),
        (lambda p: None, "not found"),
    ],
    ids=["directory", "missing"],
)
def test_input_that_is_not_a_file_is_named(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "input"
    make(path)
    with pytest.raises(InputError, match=f"^FILE: {path} {message}"):
        with open_sentences(str(path)):
            pass


def test_an_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("a fine film\n")
    real_open = os.open

    def denied(name, flags, *args):
        if str(name) == str(path):
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(name, flags, *args)

    monkeypatch.setattr(streaming.os, "open", denied)  # root may read anything: simulate
    with pytest.raises(InputError, match=f"^FILE: {path} cannot be opened \\(Permission denied"):
        with open_sentences(str(path)):
            pass
