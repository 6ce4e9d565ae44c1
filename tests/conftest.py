"""Shared fixtures. Prefect's home and result storage go to a temporary directory, set before
Prefect is imported anywhere, so test runs never see each other's (or a user's) cached results."""

import os
import shutil
import tempfile
from pathlib import Path

_PREFECT_TMP = Path(tempfile.mkdtemp(prefix="sentiment-lora-prefect-"))
os.environ.update(
    {
        "PREFECT_HOME": str(_PREFECT_TMP),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(_PREFECT_TMP / "results"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(_PREFECT_TMP / "hf-hub"),  # models registered by tests stay here
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
)
os.environ.pop("PREFECT_API_URL", None)

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SST2_DIR = next(
    (
        p
        for p in (ROOT / "data" / "sst2", ROOT.parent / "shared" / "data" / "sst2")
        if (p / "train.tsv").is_file()
    ),
    None,
)


def pytest_sessionfinish(session, exitstatus):  # noqa: D103
    shutil.rmtree(_PREFECT_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    """The real SST-2 files (data/sst2 or ../shared/data/sst2)."""
    if SST2_DIR is None:
        pytest.fail("SST-2 not found: run `make setup` (links data/sst2) first")
    return SST2_DIR


def write_tsv(path: Path, rows: list[str], header: str = "sentence\tlabel") -> Path:
    """Write a TSV file from raw lines (no escaping: tests control the bytes)."""
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_sst2(tmp_path: Path) -> Path:
    """A small valid GLUE-format SST-2 directory (40 train rows, 10 dev rows)."""
    pos = [
        "a truly great and moving film",
        "warm funny and wise",
        "one of the best movies this year",
        "a delight from start to finish",
        "beautifully acted and shot",
    ]
    neg = [
        "a dull and lifeless mess",
        "boring from start to finish",
        "the worst script in years",
        "painfully slow and tedious",
        "an ugly pointless movie",
    ]
    train = [f"{s} {i}\t1" for i in range(4) for s in pos] + [
        f"{s} {i}\t0" for i in range(4) for s in neg
    ]
    train += ["ok\t1", "bad film\t0"]  # under min_words=3: removed by preprocessing
    dev = [f"{s}\t1" for s in pos] + [f"{s}\t0" for s in neg]
    d = tmp_path / "sst2"
    d.mkdir()
    write_tsv(d / "train.tsv", train)
    write_tsv(d / "dev.tsv", dev)
    return d


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory):
    """42 short SST-2 rows prepared with a quarter held out for validation: enough for a tiny
    model to train a few steps on (read only)."""
    from sentiment_lora.config import DataConfig
    from sentiment_lora.training.data import prepare_sst2

    tmp = tmp_path_factory.mktemp("tiny-prepared")
    pos = ["a truly great and moving film", "warm funny and wise", "a delight to watch"]
    neg = ["a dull and lifeless mess", "boring from start to finish", "an ugly pointless movie"]
    rows = [f"{s} {i}\t{y}" for i in range(7) for group, y in ((pos, 1), (neg, 0)) for s in group]
    write_tsv(tmp / "train.tsv", rows)
    write_tsv(tmp / "dev.tsv", [f"{s}\t1" for s in pos] + [f"{s}\t0" for s in neg])
    return prepare_sst2(DataConfig(data_dir=str(tmp), validation_fraction=0.25), tmp / "data")


@pytest.fixture(scope="session")
def tiny_distilbert_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer DistilBERT saved as safetensors, with a WordPiece tokenizer.

    Stands in for distilbert-base-uncased (same architecture and vocabulary, tiny sizes).
    """
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel, set_seed

    from sentiment_lora.training.modeling import embedded_model_path

    set_seed(0)
    out = tmp_path_factory.mktemp("tiny-distilbert")
    config = DistilBertConfig(
        vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128
    )
    DistilBertModel(config).save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(embedded_model_path()).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_distilbert_dir: Path, tmp_path_factory) -> Path:
    """A model directory as the pipeline writes it: a LoRA adapter on the tiny DistilBERT,
    trained for one epoch on 20 rows (seconds). Tests that damage it work on a copy."""
    from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
    from sentiment_lora.training.data import prepare_sst2
    from sentiment_lora.training.lora import train_lora

    tmp = tmp_path_factory.mktemp("tiny-model")
    data = tmp / "sst2"
    data.mkdir()
    rows = "".join(f"a good film number {i}\t1\na bad film number {i}\t0\n" for i in range(10))
    for name in ("train.tsv", "dev.tsv"):
        (data / name).write_text("sentence\tlabel\n" + rows)
    prepared = prepare_sst2(DataConfig(data_dir=str(data)), tmp / "prep")
    hp = LoraHyperparams(name="tiny", learning_rate=1e-3, epochs=1, batch_size=8)
    train = TrainConfig(model=str(tiny_distilbert_dir), max_length=16)
    return Path(train_lora(prepared, hp, train, tmp / "run").adapter_dir)


def run_options_in(tmp: Path, **options: object):
    """RunOptions writing reports, artifacts and registry under ``tmp`` (flow tests)."""
    from sentiment_lora.config import RunOptions

    dirs = {
        "reports_dir": str(tmp / "reports"),
        "artifacts_dir": str(tmp / "artifacts"),
        "registry_dir": str(tmp / "registry"),
    }
    return RunOptions(**{**dirs, **options})
