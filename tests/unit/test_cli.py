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


def _registry_with_runs(registry: Path, tmp_path: Path) -> None:
    """Two promoted versions (a, b) and their runs in the ledger."""
    from sentiment_lora.operations.gate import append_run_record
    from sentiment_lora.operations.registry import ModelRecord, promote

    for name, f1 in (("a", 0.81), ("b", 0.86)):
        model = tmp_path / f"model-{name}"
        model.mkdir()
        (model / "adapter_model.safetensors").write_bytes(name.encode())
        record = ModelRecord(
            run_id=f"run-{name}",
            config_name=f"cfg-{name}",
            model_key=name,
            test_accuracy=f1 + 0.01,
            test_f1_macro=f1,
            test_set_hash="t",
            predictions=[1, 0],
        )
        promote(registry, record, model)
        append_run_record(
            registry,
            run_id=record.run_id,
            triggered_by="ui",
            data={"fingerprint": "f", "train": 4},
            best_config=record.config_name,
            test_accuracy=record.test_accuracy,
            test_f1_macro=record.test_f1_macro,
            decision=None,
        )


def test_runs_prints_the_ledger_as_a_table(tmp_path: Path, capsys) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    assert main(["runs", "--registry-dir", str(registry)]) == 0
    assert capsys.readouterr().out.startswith("no runs recorded in")
    _registry_with_runs(registry, tmp_path)
    where = ["--registry-dir", str(registry)]
    assert (
        main(["champion", "rollback", "v0001", "--reason", "b is worse on negation", *where]) == 0
    )
    capsys.readouterr()
    assert main(["runs", *where]) == 0
    header, *rows = [line.split("  ") for line in capsys.readouterr().out.splitlines()]
    cells = [[c.strip() for c in row if c.strip()] for row in (header, *rows)]
    assert cells[0] == [
        "time",
        "run id",
        "trigger",
        "best config",
        "test acc",
        "macro-F1",
        "gate",
        "champion",
    ]
    assert cells[1][1:] == ["run-a", "ui", "cfg-a", "0.8200", "0.8100", "gate off", "v0001"]
    assert cells[2][1:] == ["run-b", "ui", "cfg-b", "0.8700", "0.8600", "gate off", "v0002"]
    assert cells[3][1:] == ["-", "-", "-", "-", "-", "rollback: b is worse on negation", "v0001"]
    assert main(["runs", "--registry-dir", str(tmp_path / "none")]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --registry-dir: {tmp_path / 'none'} is not a directory\n"
    )


def test_champion_list_marks_the_champion_and_rollback_moves_it(tmp_path: Path, capsys) -> None:
    registry = tmp_path / "registry"
    _registry_with_runs(registry, tmp_path)
    assert main(["champion", "list", "--registry-dir", str(registry)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == "version run id config test acc macro-F1 promoted at".split()
    assert out[1].split()[:5] == ["v0001", "run-a", "cfg-a", "0.8200", "0.8100"]
    assert out[2].split()[:6] == ["*", "v0002", "run-b", "cfg-b", "0.8700", "0.8600"]
    assert "(promotion)" in out[-1]

    where = ["--registry-dir", str(registry)]
    assert main(["champion", "rollback", "v0001", "--reason", "regression", *where]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "champion: v0001 (run run-a, config cfg-a, test macro-F1 0.8100), was v0002",
        "reason: regression",
    ]
    assert main(["champion", "list", "--registry-dir", str(registry)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["*", "v0001"] and out[2].split()[0] == "v0002"
    assert out[-1].endswith("(rollback): regression")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["v0007", "--reason", "why"], "error: VERSION: unknown version 'v0007'"),
        (["v0001", "--reason", " "], "error: --reason: must not be empty"),
        (["v0002", "--reason", "why"], "error: VERSION: v0002 is the champion already"),
    ],
)
def test_champion_rollback_errors_are_one_line_with_exit_2(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    registry = tmp_path / "registry"
    _registry_with_runs(registry, tmp_path)
    before = (registry / "champion.json").read_bytes()
    assert main(["champion", "rollback", *argv, "--registry-dir", str(registry)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert captured.out == ""
    assert (registry / "champion.json").read_bytes() == before
