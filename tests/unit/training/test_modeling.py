"""Model resolution, LoRA targets and the DistilBERT path (tiny random DistilBERT)."""

import json
from pathlib import Path

import pytest
import torch

from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.training.data import prepare_sst2
from sentiment_lora.training.inference import SentimentAnalyzer
from sentiment_lora.training.lora import train_lora
from sentiment_lora.training.modeling import (
    ModelLoadError,
    add_lora,
    count_parameters,
    load_classifier,
    model_type_of,
    resolve_lora_targets,
    resolve_model_source,
)


def test_peft_defaults_per_architecture() -> None:
    assert resolve_lora_targets("bert") == ["query", "value"]
    assert resolve_lora_targets("distilbert") == ["q_lin", "v_lin"]
    assert resolve_lora_targets("roberta") == ["query", "value"]
    assert resolve_lora_targets("bert", ["query", "key", "value"]) == ["query", "key", "value"]


def test_unknown_architecture_asks_for_targets() -> None:
    with pytest.raises(ModelLoadError, match="target_modules"):
        resolve_lora_targets("my-new-arch")


def test_model_source_resolution(tmp_path: Path) -> None:
    assert Path(resolve_model_source("embedded"), "config.json").is_file()
    assert resolve_model_source("distilbert-base-uncased") == "distilbert-base-uncased"
    with pytest.raises(ModelLoadError, match="not a model directory"):
        resolve_model_source(str(tmp_path))
    with pytest.raises(ModelLoadError, match="no such model directory"):
        resolve_model_source("./no/such/dir")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelLoadError, match="is a file, not a model directory"):
        resolve_model_source(str(tmp_path / "file"))
    (tmp_path / "config.json").write_text('{"model_type": "bert",')
    with pytest.raises(ModelLoadError, match=r"config\.json:1: invalid JSON"):
        resolve_model_source(str(tmp_path))


@pytest.mark.parametrize("typo", ["models/minilm", "./minilm", "~/no-such-minilm", "a/b/c"])
def test_a_mistyped_local_path_is_not_looked_up_on_the_hub(
    typo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # the first component exists: a path, not a hub namespace
    monkeypatch.setattr("transformers.AutoConfig.from_pretrained", _no_hub)
    with pytest.raises(ModelLoadError, match=f"model: .*{typo[2:]}: no such model directory$"):
        model_type_of(resolve_model_source(typo))


def _no_hub(*args, **kwargs):
    raise AssertionError("the hub was asked")


def test_an_unknown_hub_id_offline_is_one_line_without_retry_noise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(name, **kwargs):
        import logging

        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr("transformers.AutoConfig.from_pretrained", unreachable)
    source = resolve_model_source("models/minilm")  # no ./models here: could be a hub id
    assert source == "models/minilm"
    with pytest.raises(ModelLoadError) as raised:
        model_type_of(source)
    assert str(raised.value) == (
        "model: models/minilm: no such model directory, and not a model id on the Hugging "
        "Face hub (offline?)"
    )
    assert "Retrying" not in caplog.text


def test_an_unknown_hub_id_with_the_real_client_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 (conftest): the real lookup fails and is named."""
    with pytest.raises(ModelLoadError, match="not a model id on the Hugging Face hub"):
        model_type_of(resolve_model_source("sentiment-lora-tests/no-such-model"))


def test_a_hub_id_that_answers_is_loaded_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    class Config:
        model_type = "distilbert"

    def hub(name, **kwargs):
        asked.append(name)
        return Config()

    monkeypatch.setattr("transformers.AutoConfig.from_pretrained", hub)
    assert model_type_of(resolve_model_source("distilbert-base-uncased")) == "distilbert"
    assert asked == ["distilbert-base-uncased"]


def test_embedded_model_is_bert_with_query_value_lora() -> None:
    source = resolve_model_source("embedded")
    assert model_type_of(source) == "bert"
    model = add_lora(
        load_classifier(source), LoraHyperparams(name="t", learning_rate=1e-3, epochs=1)
    )
    trainable, total = count_parameters(model)
    assert 22_000_000 < total < 23_500_000
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("query.lora_A" in n for n in names) and any("value.lora_B" in n for n in names)
    assert not any("key.lora" in n for n in names)
    assert any("classifier" in n for n in names)
    # r=8 on 6 layers x (query, value) of 384x384, plus the 2x384 head
    assert trainable == 6 * 2 * (8 * 384 * 2) + (384 * 2 + 2)


def test_pickle_only_checkpoint_is_refused(tmp_path: Path, tiny_distilbert_dir: Path) -> None:
    from transformers import DistilBertModel

    model = DistilBertModel.from_pretrained(tiny_distilbert_dir)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle checkpoint
    with pytest.raises(ModelLoadError, match="only pytorch_model.bin; pickle checkpoints"):
        load_classifier(str(tmp_path))


def test_damaged_base_weights_are_named(tmp_path: Path, tiny_distilbert_dir: Path) -> None:
    import shutil

    base = Path(shutil.copytree(tiny_distilbert_dir, tmp_path / "base"))
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: not a valid safetensors file"):
        load_classifier(resolve_model_source(str(base)))


def test_cuda_without_a_gpu_says_what_to_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentiment_lora.training.modeling import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match="no CUDA device is available; use 'cpu' or 'auto'"):
        pick_device("cuda")


@pytest.fixture
def tiny_prepared(tiny_sst2: Path, tmp_path: Path):
    """The tiny SST-2 files prepared with a quarter held out for validation."""
    return prepare_sst2(
        DataConfig(data_dir=str(tiny_sst2), validation_fraction=0.25), tmp_path / "data"
    )


def test_distilbert_trains_saves_and_reloads(
    tiny_prepared, tiny_distilbert_dir: Path, tmp_path: Path
) -> None:
    prepared = tiny_prepared
    hp = LoraHyperparams(name="tiny", learning_rate=5e-3, epochs=2, batch_size=8)
    result = train_lora(
        prepared, hp, TrainConfig(model=str(tiny_distilbert_dir), max_length=32), tmp_path / "run"
    )

    assert result.target_modules == ["q_lin", "v_lin"]
    assert [r.epoch for r in result.history] == [0.5, 1.0, 1.5, 2.0]  # evals_per_epoch=2
    assert result.history[-1].train_loss is not None
    adapter = Path(result.adapter_dir)
    assert (adapter / "adapter_model.safetensors").is_file()
    assert not list(adapter.glob("*.bin"))
    assert json.loads((adapter / "adapter_config.json").read_text())["target_modules"] in (
        ["q_lin", "v_lin"],
        ["v_lin", "q_lin"],
    )
    assert not (tmp_path / "run" / "checkpoints").exists()

    analyzer = SentimentAnalyzer.load(adapter)
    texts = ["a delight from start to finish", "boring"]
    probs = analyzer.predict_proba(texts)
    assert probs.shape == (2, 2)
    assert torch.allclose(torch.tensor(probs.sum(axis=1)), torch.ones(2, dtype=torch.float64))
    # The reloaded model is the trained one: same outputs as the in-training copy would give twice.
    assert (SentimentAnalyzer.load(adapter).predict_proba(texts) == probs).all()


def test_incomplete_checkpoints_are_skipped(tmp_path: Path) -> None:
    from sentiment_lora.training.lora import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "none") is None
    for step, complete in ((10, True), (20, True), (30, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            (d / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert not (tmp_path / "checkpoint-30").exists()


def test_precision_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentiment_lora.training.modeling import fast_bf16_available, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"  # explicit: honoured even if emulated
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", cpu)
    for native in (False, True):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert fast_bf16_available(cpu) is native
        assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
        assert resolve_precision("auto", cpu, training=True) == "fp32"  # no faster on a CPU
        assert resolve_precision("bf16", cpu, training=True) == "bf16"


def test_bf16_training_is_recorded(
    tiny_prepared, tiny_distilbert_dir: Path, tmp_path: Path
) -> None:
    hp = LoraHyperparams(name="tiny-bf16", learning_rate=5e-3, epochs=1, batch_size=8)
    train = TrainConfig(model=str(tiny_distilbert_dir), max_length=32, precision="bf16")
    result = train_lora(tiny_prepared, hp, train, tmp_path / "run")
    assert result.precision == "bf16"
    assert result.history and all(r.eval_loss == r.eval_loss for r in result.history)  # no NaN
    # the adapter is saved in fp32 (autocast leaves the weights alone)
    from safetensors.torch import load_file

    weights = load_file(str(Path(result.adapter_dir) / "adapter_model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}
