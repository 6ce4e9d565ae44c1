"""Train and evaluate ONE grid config: the unit of work a `gpu` work pool runs.

Deployed as `sst2-train-config`; the pipeline's `work-pool` backend starts one run per config.
"""

import flows._env  # noqa: F401, I001  (must precede the Prefect import)

from prefect import flow

from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig, resolve_path
from tasks.pipeline_tasks import ConfigRun, evaluate_on_test, prepare_data, train_config


@flow(name="sst2-train-config", persist_result=True)
def sst2_train_config(
    hp: LoraHyperparams,
    data: DataConfig = DataConfig(),  # noqa: B008 (frozen model: a safe default)
    train: TrainConfig = TrainConfig(),  # noqa: B008
    artifacts_dir: str = "artifacts",
) -> ConfigRun:
    """Fine-tune one config and evaluate it on test; returns paths and metrics (small)."""
    artifacts_dir = str(resolve_path(artifacts_dir))
    prepared = prepare_data(data, artifacts_dir)
    result = train_config(prepared, hp, train, artifacts_dir)
    return ConfigRun(training=result, test=evaluate_on_test(result, prepared, train))


if __name__ == "__main__":
    import sys

    from sentiment_lora.config import GRIDS

    name = sys.argv[1] if len(sys.argv) > 1 else GRIDS["quick"][0].name
    hp = next(h for grid in GRIDS.values() for h in grid if h.name == name)
    print(sst2_train_config(hp=hp).training.model_dump_json(indent=2))
