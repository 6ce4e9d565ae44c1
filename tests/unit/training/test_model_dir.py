"""A saved model directory loads elsewhere: portable base id, named labels, a real card.

The embedded model is trained once (a few seconds on 30 rows); the hub cache it registers in
is a temporary directory, never the user's.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import constants, scan_cache_dir

from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.training.data import LABEL_NAMES, prepare_sst2
from sentiment_lora.training.inference import SentimentAnalyzer
from sentiment_lora.training.lora import train_lora
from sentiment_lora.training.model_card import CARD_FILE
from sentiment_lora.training.modeling import METADATA_FILE, ModelLoadError, embedded_model_path
from sentiment_lora.training.portable_base import (
    EMBEDDED_BASE_ID,
    REGISTER_BASE_COMMAND,
    BaseReference,
    embedded_base_revision,
    portable_base,
    read_adapter_base,
    register_embedded_base,
)
from tests.conftest import write_tsv

SENTENCES = [
    "a delight from start to finish",
    "boring from start to finish",
    "warm funny and wise",
    "the worst script in years",
    "an ugly pointless movie",
]
# Runs in a fresh interpreter: PEFT's auto class, nothing from this project.
LOAD_WITH_PEFT = """
import json, sys
from peft import AutoPeftModelForSequenceClassification
from transformers import AutoTokenizer
model = AutoPeftModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
batch = tokenizer(json.loads(sys.argv[2]), padding=True, truncation=True, return_tensors="pt")
print(json.dumps({
    "id2label": {str(k): v for k, v in model.config.id2label.items()},
    "label2id": model.config.label2id,
    "predictions": model(**batch).logits.argmax(-1).tolist(),
}))
"""


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """huggingface_hub's cache directory, redirected to an empty temporary one."""
    cache = tmp_path_factory.mktemp("hub-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def model_dir(hub_cache: Path, tmp_path_factory) -> Path:
    """An embedded-base model directory written by train_lora (1 epoch on 30 rows)."""
    tmp = tmp_path_factory.mktemp("embedded-run")
    pos = ["a truly great and moving film", "warm funny and wise", "a delight to watch"]
    neg = ["a dull and lifeless mess", "boring from start to finish", "an ugly pointless movie"]
    rows = [
        f"{s} {i}\t{label}"
        for i in range(5)
        for group, label in ((pos, 1), (neg, 0))
        for s in group
    ]
    write_tsv(tmp / "train.tsv", rows)
    write_tsv(tmp / "dev.tsv", [f"{s}\t1" for s in pos] + [f"{s}\t0" for s in neg])
    prepared = prepare_sst2(DataConfig(data_dir=str(tmp), validation_fraction=0.25), tmp / "data")
    hp = LoraHyperparams(name="portable", learning_rate=5e-3, epochs=1, batch_size=8)
    train = TrainConfig(max_length=32, precision="fp32", device="cpu", evals_per_epoch=1)
    return Path(train_lora(prepared, hp, train, tmp / "run").adapter_dir)


def _other_machine(tmp_path: Path, model_dir: Path) -> tuple[Path, dict[str, str]]:
    """A copy of ``model_dir`` and the environment of a machine that never saw this one's
    hub cache: empty HF_HOME and HF_HUB_CACHE, offline, no PYTHONPATH."""
    copy = tmp_path / "elsewhere" / "model"
    shutil.copytree(model_dir, copy)
    home = tmp_path / "hf-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON"))}
    env.update(
        HF_HOME=str(home),
        HF_HUB_CACHE=str(home / "hub"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error",
    )
    return copy, env


def _card_command(model_dir: Path) -> list[str]:
    """The one setup line the card gives, run with this interpreter."""
    card = (model_dir / CARD_FILE).read_text(encoding="utf-8")
    block = card.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert "\n" not in block, "the card must give at most one command"
    argv = shlex.split(block)
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def test_adapter_names_a_portable_base(model_dir: Path) -> None:
    config = json.loads((model_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == EMBEDDED_BASE_ID
    assert config["revision"] == embedded_base_revision()
    site = str(embedded_model_path().parent.parent)
    for name in ("adapter_config.json", CARD_FILE, METADATA_FILE):
        assert site not in (model_dir / name).read_text(), f"{name} names this machine's path"
    assert read_adapter_base(model_dir) == portable_base("embedded")


def test_saved_card_is_ours_and_valid(model_dir: Path) -> None:
    card = (model_dir / CARD_FILE).read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "peft"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "model-index" not in meta  # no test metrics at save time
    assert "report of the pipeline run" in card
    assert REGISTER_BASE_COMMAND in card
    assert "[More Information Needed]" not in card  # PEFT's blank template is gone


def test_fresh_process_loads_named_labels_and_same_predictions(
    model_dir: Path, tmp_path: Path
) -> None:
    copy, env = _other_machine(tmp_path, model_dir)
    cwd = tmp_path / "elsewhere"
    load = [sys.executable, "-c", LOAD_WITH_PEFT, str(copy), json.dumps(SENTENCES)]

    before = subprocess.run(load, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert before.returncode != 0, "the base loaded before registration: the cache leaked"
    assert "couldn't find them in the cached files" in before.stderr, before.stderr[-2000:]

    setup = subprocess.run(_card_command(copy), cwd=cwd, env=env, capture_output=True, timeout=300)
    assert setup.returncode == 0, setup.stderr
    loaded = subprocess.run(load, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    out = json.loads(loaded.stdout.strip().splitlines()[-1])

    assert out["id2label"] == {str(i): name for i, name in enumerate(LABEL_NAMES)}
    assert out["label2id"] == {name: i for i, name in enumerate(LABEL_NAMES)}
    ours = SentimentAnalyzer.load(copy, device="cpu", precision="fp32").predict_proba(SENTENCES)
    assert out["predictions"] == np.argmax(ours, axis=1).tolist()


def test_directories_written_before_still_load(model_dir: Path, tmp_path: Path) -> None:
    """Before: adapter_config and metadata named the absolute site-packages path."""
    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    config = json.loads((old / "adapter_config.json").read_text())
    config.update(base_model_name_or_path=str(embedded_model_path()), revision=None)
    (old / "adapter_config.json").write_text(json.dumps(config))
    meta = json.loads((old / METADATA_FILE).read_text())
    (old / METADATA_FILE).write_text(json.dumps({**meta, "base_model": str(embedded_model_path())}))
    options = {"device": "cpu", "precision": "fp32"}
    expected = SentimentAnalyzer.load(model_dir, **options).predict_proba(SENTENCES)
    assert np.array_equal(SentimentAnalyzer.load(old, **options).predict_proba(SENTENCES), expected)


def test_other_base_weights_are_refused(model_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    config = json.loads((other / "adapter_config.json").read_text())
    (other / "adapter_config.json").write_text(json.dumps({**config, "revision": "0" * 40}))
    with pytest.raises(ModelLoadError, match="revision"):
        SentimentAnalyzer.load(other, device="cpu")


def test_registration_is_idempotent_and_touches_nothing_else(tmp_path: Path) -> None:
    neighbour = tmp_path / "models--sentence-transformers--all-MiniLM-L6-v2" / "refs" / "main"
    neighbour.parent.mkdir(parents=True)
    neighbour.write_text("c9745ed1d9f207416be6d2e6f8de32d1f16199bf")
    first = register_embedded_base(tmp_path)
    files = {p.name: os.readlink(p) for p in first.iterdir()}
    assert register_embedded_base(tmp_path) == first
    assert {p.name: os.readlink(p) for p in first.iterdir()} == files
    assert first.name == embedded_base_revision()
    assert json.loads((first / "config.json").read_text())["id2label"] == {
        "0": "negative",
        "1": "positive",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "models--sentence-transformers--all-MiniLM-L6-v2",
        "models--sentiment-lora--embedded-all-MiniLM-L6-v2",
    ]
    assert neighbour.read_text() == "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"


def test_deleting_the_cache_entry_keeps_the_package(tmp_path: Path) -> None:
    register_embedded_base(tmp_path)
    weights = embedded_model_path() / "model.safetensors"
    size = weights.stat().st_size
    repo = next(r for r in scan_cache_dir(tmp_path).repos if r.repo_id == EMBEDDED_BASE_ID)
    assert repo.size_on_disk >= size  # huggingface_hub sees a complete, valid entry
    scan_cache_dir(tmp_path).delete_revisions(embedded_base_revision()).execute()
    assert weights.is_file() and weights.stat().st_size == size
    assert not repo.repo_path.exists()


def test_hub_ids_and_directories_are_recorded_unchanged(tiny_distilbert_dir: Path) -> None:
    assert portable_base("distilbert-base-uncased") == BaseReference(
        name_or_path="distilbert-base-uncased"
    )
    assert portable_base(str(tiny_distilbert_dir)) == BaseReference(
        name_or_path=str(tiny_distilbert_dir.resolve())
    )
    assert portable_base(str(embedded_model_path())).name_or_path == EMBEDDED_BASE_ID
