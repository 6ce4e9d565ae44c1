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
from sentiment_lora.training.data import DataFormatError
from tests.conftest import write_tsv


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
    missing = tmp_path / "none"
    with pytest.raises(DataFormatError, match=f"^{missing}: data directory not found"):
        preflight(_config(tmp_path, sst2_dir, data=DataConfig(data_dir=str(missing))))
    missing.mkdir()
    write_tsv(missing / "train.tsv", ["a fine film\t1"])
    with pytest.raises(DataFormatError, match=r"^.*none/dev\.tsv: file not found"):
        preflight(_config(tmp_path, sst2_dir, data=DataConfig(data_dir=str(missing))))


def test_data_that_cannot_train_is_refused_before_the_model_is_read(
    tmp_path: Path, sst2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentiment_lora.operations.preflight as module

    def no_model(model: str) -> str:
        raise AssertionError("the model was read before the data was checked")

    monkeypatch.setattr(module, "check_model", no_model)
    data = tmp_path / "data"
    data.mkdir()
    write_tsv(data / "train.tsv", [f"a good film number {i}\t1" for i in range(30)])
    write_tsv(data / "dev.tsv", ["a fine film\t1", "a poor film\t0"])
    with pytest.raises(DataFormatError) as err:
        preflight(_config(tmp_path, sst2_dir, data=DataConfig(data_dir=str(data))))
    assert str(err.value) == (
        f"{data / 'train.tsv'}: only one class after filtering (30 rows of label 1, 0 of label 0; "
        "min_words=3); the model needs both labels"
    )


def test_models_that_cannot_load(tmp_path: Path) -> None:
    assert check_model("embedded") == "bert"
    with pytest.raises(PreflightError, match="^model: .* is not a model directory"):
        check_model(str(tmp_path))
    with pytest.raises(
        PreflightError,
        match="^model: no-such-org/no-such-model: no such model directory, and not a model id on",
    ):
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


def test_a_config_is_checked_once_per_process(
    tmp_path: Path, sst2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentiment_lora.operations.preflight as module

    calls: list[object] = []
    monkeypatch.setattr(module, "_check", calls.append)
    monkeypatch.setattr(module, "_PASSED", set())
    config = _config(tmp_path, sst2_dir)
    preflight(config)
    preflight(config)  # the command line checked it; the flow does not again
    assert calls == [config]
    preflight(_config(tmp_path, sst2_dir, reports_dir=str(tmp_path / "other")))
    assert len(calls) == 2


def test_data_files_are_hashed_once_while_unchanged(tmp_path: Path) -> None:
    from sentiment_lora.training.data import _sha256, sha256_file

    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\na b c\t1\n", encoding="utf-8")
    _sha256.cache_clear()
    first = sha256_file(path)
    assert sha256_file(path) == first and _sha256.cache_info().misses == 1
    path.write_text("sentence\tlabel\na b c d\t0\n", encoding="utf-8")
    assert sha256_file(path) != first and _sha256.cache_info().misses == 2


def test_flow_modules_apply_process_defaults_before_prefect() -> None:
    import ast

    for module in sorted((Path(__file__).resolve().parents[3] / "flows").glob("*.py")):
        if module.name.startswith("_"):
            continue
        imports = [
            node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            for node in ast.parse(module.read_text(encoding="utf-8")).body
            if isinstance(node, ast.Import | ast.ImportFrom)
        ]
        first_prefect = next(i for i, name in enumerate(imports) if name.startswith("prefect"))
        assert "flows._env" in imports[:first_prefect], module.name


def test_flow_script_runs_from_any_directory(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[3] / "flows" / "full.py"
    done = subprocess.run(
        [sys.executable, str(script), "--max-train-samples", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: --max-train-samples: Input should be greater than or equal to 1 (got 0)"
    ]


def test_a_run_that_would_fill_the_disk_is_refused_naming_the_place(
    tmp_path: Path, sst2_dir: Path
) -> None:
    from sentiment_lora.config import LoraHyperparams
    from sentiment_lora.operations.disk import run_need_bytes, weights_bytes
    from sentiment_lora.operations.preflight import check_disk
    from sentiment_lora.training.modeling import resolve_model_source

    config = _config(tmp_path, sst2_dir)
    base = weights_bytes(resolve_model_source("embedded"))
    assert base > 50 * 2**20  # MiniLM's fp32 weights
    need = run_need_bytes(config, base)
    check_disk(config, free=lambda where: need)  # exactly enough
    with pytest.raises(PreflightError, match=r"^reports_dir: 1 MiB free on .*needs about") as e:
        check_disk(config, free=lambda where: 2**20)
    assert "2 configs, lora" in str(e.value) and "sentiment-lora gc" in str(e.value)
    artifacts_only = lambda where: 2**20 if "artifacts" in str(where) else need  # noqa: E731
    with pytest.raises(PreflightError, match=r"^artifacts_dir: 1 MiB free"):
        check_disk(config, free=artifacts_only)
    # Full fine-tuning writes whole models and their optimiser states: much more.
    full = config.model_copy(
        update={"grid": [LoraHyperparams(name="f", learning_rate=5e-5, epochs=1, method="full")]}
    )
    assert run_need_bytes(full, base) > 6 * base > need


def test_dir_bytes_counts_files_not_links(tmp_path: Path) -> None:
    from sentiment_lora.operations.disk import dir_bytes

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"0" * 1000)
    (tmp_path / "a" / "link").symlink_to(tmp_path / "a" / "x.bin")
    assert dir_bytes(tmp_path) == 1000 and dir_bytes(tmp_path / "missing") == 0
