"""The sentiment-lora console command."""

import json
import shutil
from pathlib import Path

import pytest

from sentiment_lora.cli import main
from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.operations.registry import champion_model_dir
from sentiment_lora.paths import LATEST, MODEL_DIR
from sentiment_lora.training.data import prepare_sst2
from sentiment_lora.training.inference import SentimentAnalyzer
from sentiment_lora.training.lora import train_lora


@pytest.fixture(scope="module")
def model_dir(tiny_distilbert_dir: Path, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    data = tmp / "sst2"
    data.mkdir()
    rows = "".join(f"a good film number {i}\t1\na bad film number {i}\t0\n" for i in range(10))
    for name in ("train.tsv", "dev.tsv"):
        (data / name).write_text("sentence\tlabel\n" + rows)
    prepared = prepare_sst2(DataConfig(data_dir=str(data)), tmp / "prep")
    hp = LoraHyperparams(name="cli", learning_rate=1e-3, epochs=1, batch_size=8)
    return Path(
        train_lora(
            prepared, hp, TrainConfig(model=str(tiny_distilbert_dir), max_length=16), tmp / "run"
        ).adapter_dir
    )


def test_predict_writes_one_json_object_per_line(model_dir: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.txt"
    src.write_text("a wonderful film\n\n   \nan awful film\r\n", encoding="utf-8")
    assert main(["predict", "--model-dir", str(model_dir), str(src)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # blank lines skipped
    objs = [json.loads(line) for line in lines]
    assert [o["text"] for o in objs] == ["a wonderful film", "an awful film"]
    for o in objs:
        assert o["label"] in ("negative", "positive")
        assert o["confidence"] == max(o["probabilities"].values())


def test_predict_rejects_non_utf8_and_missing_files(
    model_dir: Path, tmp_path: Path, capsys
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9\n")
    assert main(["predict", "--model-dir", str(model_dir), str(bad)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err
    assert main(["predict", "--model-dir", str(model_dir), str(tmp_path / "none.txt")]) == 2
    assert main(["predict", "--model-dir", str(tmp_path / "no-model"), str(bad)]) == 2
    assert "--model-dir" in capsys.readouterr().err


def test_predict_on_an_empty_file_writes_nothing(model_dir: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["predict", "--model-dir", str(model_dir), str(empty)]) == 0
    assert capsys.readouterr().out == ""


def test_predict_without_model_dir_loads_the_champion(
    model_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """The registry's champion wins over reports/latest/model; without one, latest is used."""
    monkeypatch.chdir(tmp_path)  # predict's defaults are registry/ and reports/ in the cwd
    champion = shutil.copytree(model_dir, champion_model_dir(tmp_path / "registry"))
    latest = tmp_path / "reports" / LATEST / MODEL_DIR
    latest.mkdir(parents=True)  # a directory, but no model: loading it would fail
    (tmp_path / "in.txt").write_text("a wonderful film\n", encoding="utf-8")
    loaded: list[Path] = []
    real_load = SentimentAnalyzer.load.__func__

    def recording_load(cls, path, **options):
        loaded.append(Path(path).resolve())
        return real_load(cls, path, **options)

    monkeypatch.setattr(SentimentAnalyzer, "load", classmethod(recording_load))
    assert main(["predict", "in.txt"]) == 0
    assert loaded == [champion.resolve()]
    assert json.loads(capsys.readouterr().out)["text"] == "a wonderful film"

    shutil.rmtree(champion)  # no champion: the newest run's best model
    latest.rmdir()
    shutil.copytree(model_dir, latest)
    assert main(["predict", "in.txt"]) == 0
    assert loaded[-1] == latest.resolve()
