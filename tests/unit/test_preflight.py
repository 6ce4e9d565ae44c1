"""Environment checks that run before any expensive work, each naming its parameter."""

from pathlib import Path

import pytest

from flows.full import main
from sentiment_lora.config import DataConfig, RunOptions, TrainConfig, build_pipeline_config
from sentiment_lora.operations.preflight import (
    PreflightError,
    check_model,
    check_writable_dir,
    preflight,
)


def _config(tmp_path: Path, sst2_dir: Path, *, data: DataConfig | None = None, **dirs: str):
    options = {
        "reports_dir": str(tmp_path / "reports"),
        "artifacts_dir": str(tmp_path / "artifacts"),
        "registry_dir": str(tmp_path / "registry"),
        **dirs,
    }
    return build_pipeline_config(
        "quick",
        data=data or DataConfig(data_dir=str(sst2_dir)),
        options=RunOptions(**options),
    )


def test_a_good_config_passes(tmp_path: Path, sst2_dir: Path) -> None:
    preflight(_config(tmp_path, sst2_dir))
    assert (tmp_path / "reports").is_dir()


def test_unwritable_reports_dir_is_named(tmp_path: Path, sst2_dir: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(PreflightError, match="^reports_dir: .* is not a writable directory"):
        preflight(_config(tmp_path, sst2_dir, reports_dir=str(blocker / "reports")))
    with pytest.raises(PreflightError, match="^artifacts_dir"):
        check_writable_dir(blocker / "x", parameter="artifacts_dir")


def test_missing_data_is_named(tmp_path: Path, sst2_dir: Path) -> None:
    with pytest.raises(PreflightError, match="^data.data_dir: .*train.tsv: file not found"):
        preflight(_config(tmp_path, sst2_dir, data=DataConfig(data_dir=str(tmp_path / "none"))))


def test_models_that_cannot_load(tmp_path: Path) -> None:
    assert check_model("embedded") == "bert"
    with pytest.raises(PreflightError, match="^model: .* is not a model directory"):
        check_model(str(tmp_path))
    with pytest.raises(PreflightError, match="^model: cannot load 'no-such-org/no-such-model'"):
        check_model("no-such-org/no-such-model")  # offline here; unknown on the hub elsewhere


def test_cli_rejects_before_the_flow_starts(tmp_path: Path, capsys) -> None:
    code = main(["--model", str(tmp_path), "--reports-dir", str(tmp_path / "r")])
    assert code == 2
    assert "error: model:" in capsys.readouterr().err
    assert main(["--max-train-samples", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --max-train-samples: ")
    assert main(["--report-base-url", "javascript:alert(1)"]) == 2
    assert capsys.readouterr().err.startswith("error: --report-base-url: ")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_train_config_rejects_bad_values_naming_the_field() -> None:
    with pytest.raises(ValueError, match="max_length"):
        TrainConfig(max_length=2)
