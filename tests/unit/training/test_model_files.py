"""A damaged model directory is named in one ModelLoadError, never crashed on.

Each case damages a copy of a tiny trained model directory and loads it the way ``predict``
and the gate's re-scoring do (``SentimentAnalyzer.load``).
"""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sentiment_lora.errors import UserError
from sentiment_lora.operations.gate import challenge_champion
from sentiment_lora.operations.registry import ModelRecord, promote
from sentiment_lora.training.evaluation import evaluate_probabilities
from sentiment_lora.training.inference import SentimentAnalyzer
from sentiment_lora.training.model_files import check_model_dir
from sentiment_lora.training.modeling import ModelLoadError

WEIGHTS = "adapter_model.safetensors"


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _truncate(path: Path, size: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _damaged_base(model: Path) -> None:
    """The adapter's base is a copy of the tiny base with a truncated config.json."""
    base = Path(json.loads((model / "sentiment_lora.json").read_text())["base_model"])
    copy = model.parent / "base"
    shutil.copytree(base, copy)
    _truncate(copy / "config.json", 40)
    _edit_json(model / "sentiment_lora.json", base_model=str(copy))
    _edit_json(model / "adapter_config.json", base_model_name_or_path=str(copy))


def _deep_json(path: Path) -> None:
    path.write_text("[" * 100_000)


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated weights": (
        lambda m: _truncate(m / WEIGHTS),
        rf"{WEIGHTS}: not a valid safetensors file \(Error while deserializing header",
    ),
    "garbage weights": (
        lambda m: (m / WEIGHTS).write_bytes(b"garbage\n"),
        rf"{WEIGHTS}: not a valid safetensors file",
    ),
    "weights cut at the end": (
        lambda m: _truncate(m / WEIGHTS, (m / WEIGHTS).stat().st_size - 10),
        rf"{WEIGHTS}: not a valid safetensors file",
    ),
    "no weights": (lambda m: (m / WEIGHTS).unlink(), rf"no {WEIGHTS}; not a complete model"),
    "truncated metadata": (
        lambda m: _truncate(m / "sentiment_lora.json", 50),
        r"sentiment_lora\.json:\d+: invalid JSON",
    ),
    "metadata not an object": (
        lambda m: (m / "sentiment_lora.json").write_text("[1, 2]"),
        r"sentiment_lora\.json: expected a JSON object, got list",
    ),
    "metadata of the wrong type": (
        lambda m: _edit_json(m / "sentiment_lora.json", max_length="long"),
        r"sentiment_lora\.json: max_length: Input should be a valid integer",
    ),
    "no metadata": (
        lambda m: (m / "sentiment_lora.json").unlink(),
        r"is not a sentiment-lora model \(no sentiment_lora\.json\)",
    ),
    "truncated adapter config": (
        lambda m: _truncate(m / "adapter_config.json", 50),
        r"adapter_config\.json:\d+: invalid JSON",
    ),
    "adapter config without a PEFT type": (
        lambda m: _edit_json(m / "adapter_config.json", peft_type=None, task_type="nonsense"),
        r"adapter_config\.json: not a PEFT adapter config",
    ),
    "adapter config of the wrong type": (
        lambda m: _edit_json(m / "adapter_config.json", r="eight"),
        r"the adapter does not fit its base model",
    ),
    "tokenizer config nested too deeply": (
        lambda m: _deep_json(m / "tokenizer_config.json"),
        r"tokenizer_config\.json: JSON nested too deeply",
    ),
    "base path escaping the directory": (
        lambda m: _edit_json(m / "adapter_config.json", base_model_name_or_path="../../etc"),
        r"adapter_config\.json: base_model_name_or_path: '\.\./\.\./etc' is a relative path "
        "that escapes the model directory",
    ),
    "base path that does not exist": (
        lambda m: _edit_json(m / "adapter_config.json", base_model_name_or_path="/no/such/base"),
        r"base_model_name_or_path: the base model /no/such/base does not exist on this machine",
    ),
    "metadata base that does not exist": (
        lambda m: _edit_json(m / "sentiment_lora.json", base_model="/no/such/base"),
        r"sentiment_lora\.json: base_model: the base model /no/such/base does not exist",
    ),
    "base with a truncated config.json": (_damaged_base, r"base/config\.json:\d+: invalid JSON"),
    "no tokenizer": (
        lambda m: [p.unlink() for p in m.glob("tokenizer*")],
        r"no usable tokenizer files",
    ),
}


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_model_directory_is_named(model_copy: Path, damage: str) -> None:
    apply, message = DAMAGES[damage]
    apply(model_copy)
    with pytest.raises(ModelLoadError, match=message) as raised:
        SentimentAnalyzer.load(model_copy, device="cpu")
    assert "\n" not in str(raised.value)


def test_the_undamaged_copy_loads(model_copy: Path) -> None:
    assert check_model_dir(model_copy).metadata.max_length == 16
    assert len(SentimentAnalyzer.load(model_copy, device="cpu").predict(["a fine film"])) == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is empty; a model directory holds sentiment_lora.json"),
        (lambda p: p.write_text("x"), "is a file, not a model directory"),
        (lambda p: None, "does not exist"),
    ],
    ids=["empty directory", "a file", "nothing"],
)
def test_not_a_model_directory_is_named(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "model"
    make(path)
    with pytest.raises(ModelLoadError, match=f"model-dir: {path} {message}"):
        SentimentAnalyzer.load(path)


def _adapter_pickle(model: Path) -> None:
    """A real pickle checkpoint of the adapter's weights, as PEFT would save it."""
    torch.save(load_file(model / WEIGHTS), model / "adapter_model.bin")


def _refuse_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle checkpoint was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("peft.utils.save_and_load.torch_load", refuse)


def test_a_pickle_next_to_damaged_safetensors_is_never_loaded(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _adapter_pickle(model_copy)
    _truncate(model_copy / WEIGHTS)
    _refuse_unpickling(monkeypatch)
    with pytest.raises(ModelLoadError, match=f"{WEIGHTS}: not a valid safetensors file"):
        SentimentAnalyzer.load(model_copy, device="cpu")


def test_pickle_only_adapter_weights_are_refused(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _adapter_pickle(model_copy)
    (model_copy / WEIGHTS).unlink()
    _refuse_unpickling(monkeypatch)
    with pytest.raises(ModelLoadError, match="only adapter_model.bin; pickle checkpoints"):
        SentimentAnalyzer.load(model_copy, device="cpu")


def test_the_gates_rescoring_names_a_damaged_champion(model_copy: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    record = ModelRecord(
        run_id="old",
        config_name="tiny",
        model_key="k",
        test_accuracy=0.5,
        test_f1_macro=0.5,
        test_set_hash="another test set",  # so the champion is scored again
        predictions=[1, 0],
    )
    _truncate(model_copy / WEIGHTS)
    promote(registry, record, model_copy)
    test = evaluate_probabilities("new", [1, 0], [0.9, 0.1])
    with pytest.raises(UserError, match=f"model/{WEIGHTS}: not a valid safetensors file"):
        challenge_champion(
            test,
            model_dir=model_copy,
            run_id="new",
            sentences=["a fine film", "a dull film"],
            registry_dir=registry,
            alpha=0.05,
            inference_options={"device": "cpu"},
        )
