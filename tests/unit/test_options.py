"""One configuration path: the flow's parameters, the command line and the profiles agree."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.utilities.templating import apply_values

from flows.full import build_parser, flow_parameters, sst2_lora_pipeline
from sentiment_lora.cli_options import ModelOptions, OptionError
from sentiment_lora.config import (
    PROFILE_DATA,
    DataConfig,
    RunOptions,
    StatsConfig,
    TrainConfig,
    build_pipeline_config,
)
from sentiment_lora.operations.data_home import DATA_HOME_ENV

ROOT = Path(__file__).resolve().parents[2]


def _deployment(name: str) -> dict:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return next(d for d in spec["deployments"] if d["name"] == name)


def test_a_partial_data_override_keeps_the_profiles_caps(tmp_path: Path) -> None:
    """The Prefect UI / a deployment setting only data_dir must not train on every row."""
    parameters = {
        **_deployment("sst2-full").get("parameters", {}),
        "profile": "quick",
        "data": {"data_dir": str(tmp_path)},
    }
    # What Prefect does with a run's parameters before calling the flow.
    validated = sst2_lora_pipeline.validate_parameters(parameters)
    config = build_pipeline_config(**validated)
    assert config.data.data_dir == str(tmp_path)
    assert config.data.max_train_samples == PROFILE_DATA["quick"]["max_train_samples"]
    assert config.data.max_validation_samples == PROFILE_DATA["quick"]["max_validation_samples"]


def test_a_form_that_sends_every_default_keeps_the_profiles_caps(tmp_path: Path) -> None:
    sent = {**DataConfig().model_dump(), "data_dir": str(tmp_path), "min_words": 5}
    validated = sst2_lora_pipeline.validate_parameters({"profile": "quick", "data": sent})
    config = build_pipeline_config(**validated)
    assert config.data.max_train_samples == PROFILE_DATA["quick"]["max_train_samples"]
    assert (config.data.data_dir, config.data.min_words) == (str(tmp_path), 5)
    full = build_pipeline_config("full", data=DataConfig(max_train_samples=500))
    assert (full.data.max_train_samples, full.data.max_validation_samples) == (500, 1000)


def test_weekly_deployment_parameters_validate(tmp_path: Path, monkeypatch) -> None:
    weekly = _deployment("sst2-weekly-retrain")["parameters"]
    # `prefect deploy` fills $SENTIMENT_LORA_DATA_HOME from its environment (`make deploy`).
    monkeypatch.setenv(DATA_HOME_ENV, str(tmp_path / "live"))
    rendered = apply_values(weekly, {}, remove_notset=False)
    validated = sst2_lora_pipeline.validate_parameters(rendered)
    assert validated["profile"] == "full"
    assert validated["data"].data_dir == str(tmp_path / "live")
    assert validated["options"] == RunOptions(gate="on", backend="work-pool")


def test_the_weekly_trigger_debounces_and_data_runs_queue() -> None:
    """Checked against Prefect's own models: the trigger's debounce (within plus
    schedule_after) and a concurrency strategy that queues instead of cancelling."""
    weekly = _deployment("sst2-weekly-retrain")
    (trigger,) = [DeploymentEventTrigger.model_validate(t) for t in weekly["triggers"]]
    assert trigger.within == trigger.schedule_after == timedelta(seconds=60)
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    assert trigger.parameters == {
        "data": {"data_dir": "{{ event.resource['sentiment-lora.data-dir'] }}"}
    }
    limit = ConcurrencyOptions.model_validate(
        {"collision_strategy": weekly["concurrency_limit"]["collision_strategy"]}
    )
    assert limit.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE
    assert weekly["concurrency_limit"]["limit"] == 1


@pytest.mark.parametrize(("given", "mode"), [(True, "on"), (False, "off"), ("dry-run", "dry-run")])
def test_gate_parameters_saved_as_booleans_still_validate(given: object, mode: str) -> None:
    assert RunOptions(gate=given).gate == mode
    with pytest.raises(ValueError, match="gate"):
        RunOptions(gate="maybe")


def test_every_model_field_is_a_command_line_option() -> None:
    help_text = build_parser().format_help()
    for model in (DataConfig, TrainConfig, StatsConfig, RunOptions):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    flags = ["--data-dir", "--max-train-samples", "--data-seed", "--train-seed", "--stats-seed"]
    flags += ["--model", "--precision", "--reports-dir", "--backend", "--gate", "--alpha"]
    for flag in flags:
        assert flag in help_text


def test_command_line_values_reach_the_models(tmp_path: Path) -> None:
    params = flow_parameters(
        [
            "--profile", "quick", "--data-dir", str(tmp_path), "--max-train-samples", "300",
            "--train-seed", "7", "--precision", "fp32", "--gate", "dry-run", "--alpha", "0.01",
            "--reports-dir", str(tmp_path / "r"), "--data-source", "local",
        ]
    )  # fmt: skip
    config = build_pipeline_config(**params)
    assert (config.data.data_dir, config.data.max_train_samples) == (str(tmp_path), 300)
    assert config.data.max_validation_samples == PROFILE_DATA["quick"]["max_validation_samples"]
    assert (config.train.seed, config.train.precision) == (7, "fp32")
    assert config.options.gate == "dry-run" and config.stats.alpha == 0.01
    assert config.options.reports_dir == str(tmp_path / "r")
    assert config.options.registry_dir == str(Path.cwd() / "registry")  # made absolute


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--max-train-samples", "-5"], "--max-train-samples"),
        (["--max-parallel", "0"], "--max-parallel"),
        (["--report-base-url", "javascript:alert(1)"], "--report-base-url"),
        (["--reports-dir", ""], "--reports-dir"),
        (["--alpha", "2"], "--alpha"),
    ],
)
def test_invalid_values_name_the_option(argv: list[str], flag: str) -> None:
    with pytest.raises(OptionError, match=f"^{flag}: "):
        flow_parameters(argv)


def test_shared_field_names_get_their_group_as_prefix() -> None:
    options = ModelOptions({"data": DataConfig, "train": TrainConfig})
    assert options.flags["data", "seed"] == "--data-seed"
    assert options.flags["train", "seed"] == "--train-seed"
    assert options.flags["train", "max_length"] == "--max-length"


def test_the_committed_option_tables_are_the_generated_ones() -> None:
    from pydantic import BaseModel, Field

    from sentiment_lora.cli_options import ModelOptions
    from sentiment_lora.option_docs import DOC, main, option_tables, render

    text = DOC.read_text(encoding="utf-8")
    assert main(["--check"]) == 0, "run: python -m sentiment_lora.option_docs"
    assert "`--gate-margin` | `options.gate_margin` | `0.01` |" in text
    stale = text.replace("Seed of the split", "Seed of the split (edited by hand)")
    assert stale != text and render(stale) == text  # a hand edit inside the block is undone

    class Extra(BaseModel):
        """A model with one more field."""

        brand_new: int = Field(3, description="A field added | later.")

    table = option_tables(ModelOptions({"extra": Extra}))
    assert "| `--brand-new` | `extra.brand_new` | `3` | A field added \\| later. |" in table
