"""Cache keys change when what a result depends on changes, and only then."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentiment_lora import fingerprint as fp
from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.training.data import prepare_sst2
from tasks.caching import data_key, training_key

HP = LoraHyperparams(name="a", learning_rate=1e-3, epochs=1)


@pytest.fixture
def prepared(tiny_sst2: Path, tmp_path: Path):
    return prepare_sst2(DataConfig(data_dir=str(tiny_sst2)), tmp_path / "prep")


def test_data_key_follows_content_not_path(tiny_sst2: Path, tmp_path: Path) -> None:
    key = data_key(DataConfig(data_dir=str(tiny_sst2)))
    copy = shutil.copytree(tiny_sst2, tmp_path / "copy")
    assert data_key(DataConfig(data_dir=str(copy))) == key
    assert data_key(DataConfig(data_dir=str(tiny_sst2), min_words=2)) != key
    with open(copy / "train.tsv", "a") as fh:
        fh.write("one more good row\t1\n")
    assert data_key(DataConfig(data_dir=str(copy))) != key


def test_training_key_changes_with_hyperparams_model_and_data(
    prepared, tiny_sst2, tmp_path
) -> None:
    train = TrainConfig()
    key = training_key(prepared, HP, train)
    assert training_key(prepared, HP, train) == key
    assert training_key(prepared, HP.model_copy(update={"learning_rate": 2e-3}), train) != key
    assert training_key(prepared, HP.model_copy(update={"lora_r": 16}), train) != key
    assert training_key(prepared, HP, TrainConfig(seed=1)) != key
    assert training_key(prepared, HP, TrainConfig(max_length=64)) != key
    other = prepare_sst2(DataConfig(data_dir=str(tiny_sst2), seed=7), tmp_path / "other")
    assert training_key(other, HP, train) != key


def test_runtime_only_settings_do_not_change_the_key(prepared) -> None:
    key = training_key(prepared, HP, TrainConfig())
    assert training_key(prepared, HP, TrainConfig(max_parallel=3, eval_batch_size=8)) == key


def test_code_change_in_src_changes_keys(prepared, monkeypatch) -> None:
    key = training_key(prepared, HP, TrainConfig())
    monkeypatch.setattr("tasks.caching.code_version", lambda: "edited")
    assert training_key(prepared, HP, TrainConfig()) != key


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch) -> Iterator[Path]:
    """code_version() pointed at a scratch copy of src/sentiment_lora (cache cleared around)."""
    copy = shutil.copytree(
        fp._PACKAGE_DIR, tmp_path / "sentiment_lora", ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.setattr(fp, "_PACKAGE_DIR", copy)
    fp.code_version.cache_clear()
    yield copy
    fp.code_version.cache_clear()  # later tests hash the real package again


def _fresh_version() -> str:
    fp.code_version.cache_clear()
    return fp.code_version()


def test_code_version_follows_every_module_of_the_package(prepared, package_copy: Path) -> None:
    version, key = _fresh_version(), training_key(prepared, HP, TrainConfig())
    assert len(version) == 16 and fp.code_version() == version
    assert _fresh_version() == version  # same sources, same version

    module = package_copy / "evidence" / "stats.py"  # a subpackage, not the package's top level
    original = module.read_text(encoding="utf-8")
    module.write_text(original + "\n# edited\n", encoding="utf-8")
    edited = _fresh_version()
    assert edited != version
    assert training_key(prepared, HP, TrainConfig()) != key  # the real key follows the code

    module.write_text(original, encoding="utf-8")
    assert _fresh_version() == version
    (package_copy / "training" / "new_module.py").write_text("X = 1\n", encoding="utf-8")
    assert _fresh_version() not in (version, edited)
    assert training_key(prepared, HP, TrainConfig()) != key


def test_auto_precision_is_keyed_on_what_it_resolves_to(prepared, monkeypatch) -> None:
    """A model trained in bf16 on one machine is not served to 'auto' on an fp32-only one."""
    import torch

    # on a CPU 'auto' trains in fp32 whether or not bf16 is native: one key for every CPU
    keys = set()
    for native in (True, False):
        monkeypatch.setattr(
            "sentiment_lora.training.modeling.fast_bf16_available", lambda device, n=native: n
        )
        keys.add(training_key(prepared, HP, TrainConfig(precision="auto")))
    assert len(keys) == 1
    monkeypatch.setattr("tasks.caching.pick_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr("sentiment_lora.training.modeling.fast_bf16_available", lambda device: True)
    auto_fast = training_key(prepared, HP, TrainConfig(precision="auto"))
    assert auto_fast == training_key(prepared, HP, TrainConfig(precision="auto"))
    monkeypatch.setattr(
        "sentiment_lora.training.modeling.fast_bf16_available", lambda device: False
    )
    auto_slow = training_key(prepared, HP, TrainConfig(precision="auto"))
    assert auto_slow != auto_fast
    assert training_key(prepared, HP, TrainConfig(precision="bf16")) != auto_slow
