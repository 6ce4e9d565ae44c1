"""The model card: Hugging Face front matter, the sections, and one setup line per base."""

from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from pydantic import ValidationError

from sentiment_lora.config import LoraHyperparams
from sentiment_lora.training.model_card import (
    CARD_FILE,
    GLUE_SST2_SHA256,
    MetricEstimate,
    ModelCardFacts,
    render_model_card,
    write_model_card,
)
from sentiment_lora.training.portable_base import (
    EMBEDDED_BASE_ID,
    REGISTER_BASE_COMMAND,
    BaseReference,
)

EMBEDDED = BaseReference(name_or_path=EMBEDDED_BASE_ID, revision="a" * 40)
SECTIONS = [
    "## Training configuration",
    "## Evaluation",
    "## Intended use",
    "## Limitations",
    "## How to load",
]


def _facts(**overrides) -> ModelCardFacts:
    values = dict(
        config_name="r8-lr3e-4",
        base_model=EMBEDDED,
        hyperparams=LoraHyperparams(
            name="r8-lr3e-4", learning_rate=3e-4, epochs=3, target_modules=["query", "value"]
        ),
        target_modules=("query", "value"),
        train_rows=57_000,
        validation_rows=10_000,
        test_rows=872,
        max_length=128,
        precision="bf16",
        seed=42,
        data_source="/data/sst2",
        data_hashes=GLUE_SST2_SHA256,
    )
    return ModelCardFacts(**{**values, **overrides})


def _full() -> ModelCardFacts:
    return _facts(
        run_id="20261126-130929",
        accuracy=MetricEstimate(
            value=0.8962, interval=(0.8761, 0.9151), confidence=0.95, method="bootstrap"
        ),
        f1_macro=MetricEstimate(value=0.8960, interval=(0.8756, 0.9149), confidence=0.95),
    )


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def test_front_matter_has_model_index_with_intervals() -> None:
    meta = _front_matter(render_model_card(_full()))
    assert meta["library_name"] == "peft"
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["license"] == "apache-2.0"
    (result,) = meta["model-index"][0]["results"]
    assert result["dataset"] == {
        "name": "GLUE SST-2",
        "type": "glue",
        "config": "sst2",
        "split": "validation",
    }
    accuracy, f1 = result["metrics"]
    assert (accuracy["type"], accuracy["value"]) == ("accuracy", 0.8962)
    assert (accuracy["args"]["ci_low"], accuracy["args"]["ci_high"]) == (0.8761, 0.9151)
    assert accuracy["args"]["confidence_level"] == 0.95
    assert accuracy["args"]["ci_method"] == "bootstrap"
    assert (f1["type"], f1["value"], f1["args"]["average"]) == ("f1", 0.896, "macro")
    assert "95% CI [0.8756, 0.9149]" in f1["name"]


def test_huggingface_hub_reads_the_card() -> None:
    card = ModelCard(render_model_card(_full()))
    results = card.data.eval_results
    assert [(r.metric_type, r.metric_value) for r in results] == [
        ("accuracy", 0.8962),
        ("f1", 0.896),
    ]
    assert {r.dataset_type for r in results} == {"glue"}
    assert {r.dataset_split for r in results} == {"validation"}
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"


def test_sections_facts_and_setup_line() -> None:
    card = render_model_card(_full())
    positions = [card.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    for fact in ("57,000", "10,000", "872", "`query`, `value`", "0.0003", "bf16", "0.8962"):
        assert fact in card, fact
    assert "95% CI [0.8761, 0.9151]" in card
    assert "20261126-130929" in card
    assert card.count(REGISTER_BASE_COMMAND) == 1


def test_card_without_metrics_points_to_the_report() -> None:
    card = render_model_card(_facts())
    assert "model-index" not in _front_matter(card)
    assert "report of the pipeline run" in card
    for section in SECTIONS:
        assert section in card


def test_the_card_names_its_real_data() -> None:
    glue = render_model_card(_full())
    assert _front_matter(glue)["datasets"] == ["glue"]
    assert "GLUE SST-2 as published, read from `/data/sst2`." in glue
    assert GLUE_SST2_SHA256["train.tsv"] in glue
    # Rows added with `data add`: another train.tsv, recorded as a version.
    added = {**GLUE_SST2_SHA256, "train.tsv": "f" * 64}
    live = _full().model_copy(
        update={"data_source": "/data/sst2-live", "data_version": "v0003", "data_hashes": added}
    )
    card = render_model_card(live)
    meta = _front_matter(card)
    assert "datasets" not in meta
    (result,) = meta["model-index"][0]["results"]
    assert result["dataset"]["name"] == "SST-2 format, `/data/sst2-live`, version v0003"
    assert result["dataset"]["type"] != "glue"
    assert "`/data/sst2-live`, version v0003: not GLUE SST-2 as published" in card
    assert f"`train.tsv` sha256 `{'f' * 64}`" in card
    hub = render_model_card(_facts(data_source="hub", data_hashes={"hub": "glue/sst2"}))
    assert _front_matter(hub)["datasets"] == ["glue"] and "Hugging Face hub" in hub
    unknown = render_model_card(_facts(data_source=None, data_hashes={}))
    assert "datasets" not in _front_matter(unknown) and "Source: not recorded." in unknown


def test_hub_and_local_bases() -> None:
    hub = render_model_card(
        _facts(base_model=BaseReference(name_or_path="distilbert-base-uncased"))
    )
    assert _front_matter(hub)["base_model"] == "distilbert-base-uncased"
    assert REGISTER_BASE_COMMAND not in hub and "`LABEL_1` = `positive`" in hub
    local = render_model_card(_facts(base_model=BaseReference(name_or_path="/models/tiny")))
    meta = _front_matter(local)
    assert "base_model" not in meta and "license" not in meta
    assert "`/models/tiny`" in local


def test_write_is_idempotent_and_replaces_the_card(tmp_path: Path) -> None:
    (tmp_path / CARD_FILE).write_text("---\nlibrary_name: peft\n---\n[More Information Needed]\n")
    write_model_card(tmp_path, _facts())
    minimal = (tmp_path / CARD_FILE).read_bytes()
    write_model_card(tmp_path, _full())
    full = (tmp_path / CARD_FILE).read_bytes()
    write_model_card(tmp_path, _full())
    assert (tmp_path / CARD_FILE).read_bytes() == full != minimal
    assert b"More Information Needed" not in full


def test_inconsistent_facts_are_refused() -> None:
    with pytest.raises(ValidationError, match="go together"):
        MetricEstimate(value=0.9, interval=(0.8, 0.95))
    with pytest.raises(ValidationError, match="does not contain"):
        MetricEstimate(value=0.9, interval=(0.91, 0.95), confidence=0.95)
    with pytest.raises(ValidationError, match="test_rows"):
        _facts(test_rows=None, accuracy=MetricEstimate(value=0.9))


def test_a_runs_card_names_the_data_version_it_trained_on(tmp_path: Path) -> None:
    from sentiment_lora.reporting.results import load_results
    from sentiment_lora.reporting.run_files import model_card_facts

    summary = load_results(Path(__file__).resolve().parents[2] / "fixtures" / "run")
    hashes = {**summary.data.source_hashes, "train.tsv": "e" * 64}
    data = summary.data.model_copy(
        update={"source": "/srv/sst2-live", "data_version": "v0004", "source_hashes": hashes}
    )
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "adapter_config.json").write_text('{"base_model_name_or_path": "some/base"}')
    facts = model_card_facts(summary.model_copy(update={"data": data}), model_dir)
    assert (facts.data_source, facts.data_version) == ("/srv/sst2-live", "v0004")
    assert not facts.is_glue and "`/srv/sst2-live`, version v0004" in render_model_card(facts)
    assert model_card_facts(summary, model_dir).is_glue  # the committed run read GLUE's files
