"""Fan-out of grid configs to the `sst2-train-config` deployment on a work pool."""

from prefect import task
from prefect.deployments import run_deployment
from prefect.logging import get_run_logger

from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.operations.storage import (
    download_to_mirror,
    get_text,
    is_url,
    result_location,
)
from tasks.pipeline_tasks import ConfigRun

TRAIN_DEPLOYMENT = "sst2-train-config/sst2-train-config"


class ChildRunFailed(RuntimeError):
    """A `sst2-train-config` child run did not complete."""


@task(name="train-on-pool", task_run_name="train-on-pool-{hp.name}")
def train_on_pool(
    hp: LoraHyperparams,
    data: DataConfig,
    train: TrainConfig,
    artifacts_dir: str,
    deployment: str = TRAIN_DEPLOYMENT,
    stop_at_epoch: float | None = None,
) -> ConfigRun:
    """Run one config as a child flow run of ``deployment`` and wait for its result;
    ``stop_at_epoch`` stops it at successive halving's first rung."""
    logger = get_run_logger()
    child = run_deployment(
        deployment,
        parameters={
            "hp": hp.model_dump(),
            "data": data.model_dump(),
            "train": train.model_dump(),
            "artifacts_dir": artifacts_dir,
            "stop_at_epoch": stop_at_epoch,
        },
        timeout=None,
    )
    logger.info("[%s] child run %s ended %s", hp.name, child.name, child.state.name)
    if not child.state.is_completed():
        raise ChildRunFailed(
            f"child run {child.name} ({deployment}, config {hp.name}) ended "
            f"{child.state.name}: {child.state.message}"
        )
    # The child wrote its result to the artifacts root: readable from any machine.
    run = ConfigRun.model_validate_json(get_text(result_location(artifacts_dir, str(child.id))))
    url = run.training.adapter_dir
    if is_url(url):  # bring the child's adapter into this machine's mirror of the root
        local = download_to_mirror(url, artifacts_dir)
        logger.info("[%s] downloaded %s", hp.name, url)
        run = run.model_copy(
            update={"training": run.training.model_copy(update={"adapter_dir": str(local)})}
        )
    return run
