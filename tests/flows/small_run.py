"""One small pipeline run for the flow tests: a few hundred rows, one config, 200 test rows."""

from pathlib import Path

from flows.full import sst2_lora_pipeline
from sentiment_lora.config import DataConfig, LoraHyperparams
from tests.conftest import run_options_in

ONE = [LoraHyperparams(name="lr2e-3-r8", learning_rate=2e-3, epochs=1)]


def small_run(data_dir: Path, tmp: Path, *, data: dict | None = None, **options: object) -> Path:
    """Run the pipeline on ``data_dir`` (300 train / 100 validation / 200 test rows, the ``ONE``
    grid) writing under ``tmp``; ``data`` adds DataConfig fields, ``options`` RunOptions ones.
    Returns the run directory (the run must complete)."""
    state = sst2_lora_pipeline(
        profile="quick",
        data=DataConfig(
            data_dir=str(data_dir),
            max_train_samples=300,
            max_validation_samples=100,
            max_test_samples=200,
            **(data or {}),
        ),
        grid=ONE,
        options=run_options_in(tmp, **options),
        return_state=True,
    )
    assert state.is_completed(), state.message
    return Path(state.result())
