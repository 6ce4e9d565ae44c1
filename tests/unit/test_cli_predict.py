"""``sentiment-lora predict``: streaming, a reader that goes away, bad options and input, and
which model it serves when ``--model-dir`` is not given."""

import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sentiment_lora.cli import main
from sentiment_lora.operations.registry import ModelRecord, promote
from sentiment_lora.paths import LATEST, MODEL_DIR
from sentiment_lora.training.inference import Prediction, SentimentAnalyzer

ROOT = Path(__file__).resolve().parents[2]
ANSWER_TIMEOUT = 120  # seconds: starting Python and loading torch on a busy 2-core machine


def _predict_process(model_dir: Path, *args: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "sentiment_lora.cli", "predict"]
    return subprocess.Popen(
        [*command, "--model-dir", str(model_dir), "--device", "cpu", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
    )


def _read_line(proc: subprocess.Popen) -> bytes:
    ready, _, _ = select.select([proc.stdout], [], [], ANSWER_TIMEOUT)
    if not ready:
        proc.kill()
        pytest.fail(f"no answer within {ANSWER_TIMEOUT} s while the input stayed open")
    return proc.stdout.readline()


def test_a_line_on_an_open_pipe_is_answered_at_once(tiny_model_dir: Path) -> None:
    proc = _predict_process(tiny_model_dir, "-")
    try:
        proc.stdin.write(b"a fine film\n")
        proc.stdin.flush()  # and the pipe stays open, as with `tail -f log |`
        assert json.loads(_read_line(proc))["text"] == "a fine film"
        proc.stdin.write(b"an awful film\n")
        proc.stdin.flush()
        assert json.loads(_read_line(proc))["text"] == "an awful film"
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


def test_a_reader_that_goes_away_ends_it_quietly(tiny_model_dir: Path, tmp_path: Path) -> None:
    """``predict FILE | head -1``: exit 0, no BrokenPipeError traceback."""
    many = tmp_path / "many.txt"
    many.write_text("".join(f"a fine film number {i}\n" for i in range(5000)))  # > a pipe's buffer
    err = tmp_path / "stderr.txt"
    with err.open("wb") as stderr:
        proc = _predict_process(tiny_model_dir, str(many), "--batch-size", "16", stderr=stderr)
        try:
            assert json.loads(_read_line(proc))["text"] == "a fine film number 0"
            proc.stdout.close()  # what `head -1` does after its line
            assert proc.wait(timeout=ANSWER_TIMEOUT) == 0
        finally:
            proc.kill()
    assert "Traceback" not in err.read_text() and "BrokenPipe" not in err.read_text()


def test_a_damaged_model_is_one_line_and_exit_2_in_a_process(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    (model / "adapter_model.safetensors").write_bytes(b"not safetensors")
    proc = _predict_process(model, "-")
    out, err = proc.communicate(b"a fine film\n", timeout=ANSWER_TIMEOUT)
    assert proc.returncode == 2 and out == b""
    assert err.decode().splitlines() == [
        f"error: {model}/adapter_model.safetensors: not a valid safetensors file (Error while "
        "deserializing header: header too large); the file is damaged: copy the model "
        "directory again, or retrain"
    ]


class _CountingAnalyzer:
    """Stands in for a loaded model: records the size of every batch it is given."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.batches: list[int] = []

    def predict(self, texts: list[str]) -> list[Prediction]:
        self.batches.append(len(texts))
        both = {"negative": 0.5, "positive": 0.5}
        return [Prediction(label="positive", confidence=0.5, probabilities=both) for _ in texts]


def test_100k_lines_are_answered_in_batches_of_the_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    many = tmp_path / "many.txt"
    many.write_text("".join(f"sentence {i}\n" for i in range(100_000)))
    model = tmp_path / "model"
    model.mkdir()
    analyzers: list[_CountingAnalyzer] = []

    def load(cls, path, *, batch_size, **options):
        analyzers.append(_CountingAnalyzer(batch_size))
        return analyzers[-1]

    monkeypatch.setattr(SentimentAnalyzer, "load", classmethod(load))
    assert main(["predict", "--model-dir", str(model), "--batch-size", "50", str(many)]) == 0
    assert analyzers[0].batches == [50] * 2000
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 100_000 and json.loads(out[-1])["text"] == "sentence 99999"


def _refuse_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(cls, path, **options):
        raise AssertionError(f"{path} was loaded")

    monkeypatch.setattr(SentimentAnalyzer, "load", classmethod(load))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--batch-size", "0"], "error: --batch-size: Input should be greater than or equal to 1"),
        (["--batch-size", "-3"], "error: --batch-size: Input should be greater than or equal to 1"),
        (
            ["--device", "cuda"],
            "error: --device: 'cuda' requested but no CUDA device is available; use 'cpu' or "
            "'auto'",
        ),
    ],
)
def test_bad_options_are_one_line_naming_the_option_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, options: list[str], message: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _refuse_loading(monkeypatch)
    (tmp_path / "in.txt").write_text("a fine film\n")
    model = tmp_path / "model"
    model.mkdir()
    assert main(["predict", "--model-dir", str(model), *options, str(tmp_path / "in.txt")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert captured.out == ""


def test_input_or_model_dir_that_is_not_what_it_should_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _refuse_loading(monkeypatch)
    text = tmp_path / "in.txt"
    text.write_text("a fine film\n")
    model = tmp_path / "model"
    model.mkdir()
    assert main(["predict", "--model-dir", str(model), str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: FILE: {tmp_path} is a directory; give a text file, one sentence a line\n"
    )
    assert main(["predict", "--model-dir", str(text), str(text)]) == 2
    assert capsys.readouterr().err == (
        f"error: --model-dir: {text} is a file, not a model directory\n"
    )


def _registry_with_two_versions(registry: Path, model: Path) -> None:
    for name in ("a", "b"):
        record = ModelRecord(
            run_id=f"run-{name}",
            config_name=f"cfg-{name}",
            model_key=name,
            test_accuracy=0.8,
            test_f1_macro=0.8,
            test_set_hash="t",
            predictions=[1, 0],
        )
        promote(registry, record, model)


@pytest.fixture
def dirs(tmp_path: Path, tiny_model_dir: Path) -> dict[str, Path]:
    """A registry with champion v0002, and a newest run whose model loads."""
    registry, reports = tmp_path / "registry", tmp_path / "reports"
    _registry_with_two_versions(registry, tiny_model_dir)
    shutil.copytree(tiny_model_dir, reports / LATEST / MODEL_DIR)
    (tmp_path / "in.txt").write_text("a fine film\n")
    return {"registry": registry, "reports": reports, "input": tmp_path / "in.txt"}


def _predict_default(dirs: dict[str, Path]) -> int:
    where = ["--registry-dir", str(dirs["registry"]), "--reports-dir", str(dirs["reports"])]
    return main(["predict", *where, "--device", "cpu", str(dirs["input"])])


@pytest.mark.parametrize("damage", ["deleted", "a file"])
def test_a_lost_champion_is_refused_not_replaced_by_the_newest_run(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys, damage: str
) -> None:
    model = dirs["registry"] / "versions" / "v0002" / "model"
    shutil.rmtree(model)
    if damage == "a file":
        model.write_text("not a model")
    _refuse_loading(monkeypatch)
    assert _predict_default(dirs) == 2
    captured = capsys.readouterr()
    problem = "is a file, not a model directory" if damage == "a file" else "is missing"
    assert captured.err == (
        f"error: {dirs['registry']}/champion.json: the champion v0002 has no model: {model} "
        "{problem}; make another version champion with `sentiment-lora champion rollback "
        "VERSION --reason ...` (versions: v0001), or --model-dir\n"
    ).replace("{problem}", problem)
    assert captured.out == ""


def test_a_damaged_champion_json_is_named(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    champion = dirs["registry"] / "champion.json"
    champion.write_bytes(champion.read_bytes()[:60])
    _refuse_loading(monkeypatch)
    assert _predict_default(dirs) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {champion}: Invalid JSON: EOF while parsing") and (
        err.count("\n") == 1
    )


def test_the_served_model_is_named_on_stderr(dirs: dict[str, Path], capsys) -> None:
    assert _predict_default(dirs) == 0
    champion = dirs["registry"] / "versions" / "v0002" / "model"
    assert capsys.readouterr().err == (f"model: {champion} (the champion of {dirs['registry']})\n")
    shutil.rmtree(dirs["registry"])  # no registry champion at all: the newest run's model
    assert _predict_default(dirs) == 0
    captured = capsys.readouterr()
    latest = dirs["reports"] / LATEST / MODEL_DIR
    assert captured.err == (
        f"model: {latest} (the newest run's model: {dirs['registry']} has no champion)\n"
    )
    assert json.loads(captured.out)["text"] == "a fine film"


def test_ctrl_c_while_streaming_exits_130_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    class Interrupted(_CountingAnalyzer):
        def predict(self, texts: list[str]) -> list[Prediction]:
            raise KeyboardInterrupt

    monkeypatch.setattr(
        SentimentAnalyzer, "load", classmethod(lambda cls, path, **options: Interrupted(64))
    )
    (tmp_path / "in.txt").write_text("a fine film\n")
    (tmp_path / "model").mkdir()
    args = ["predict", "--model-dir", str(tmp_path / "model"), str(tmp_path / "in.txt")]
    assert main(args) == 130
    assert capsys.readouterr().err == ""
