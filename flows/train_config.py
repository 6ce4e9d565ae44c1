"""Train and evaluate ONE grid config: the unit of work a `gpu` work pool runs.

Deployed as `sst2-train-config`; the pipeline's `work-pool` backend starts one run per config.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python flows/train_config.py`: make `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flows._env  # noqa: F401, I001  (process defaults: must precede the Prefect import)

from prefect import flow
from prefect.runtime import flow_run

from sentiment_lora.config import DataConfig, LoraHyperparams, RunOptions, TrainConfig, resolve_path
from sentiment_lora.operations.storage import (
    is_url,
    local_root,
    put_text,
    remote_path,
    result_location,
    upload_dir,
)
from tasks.pipeline_tasks import (
    ConfigRun,
    evaluate_on_test,
    prepare_data_fresh,
    train_config_fresh,
)


@flow(name="sst2-train-config")
def sst2_train_config(
    hp: LoraHyperparams,
    data: DataConfig = DataConfig(),  # noqa: B008 (frozen model: a safe default)
    train: TrainConfig = TrainConfig(),  # noqa: B008
    artifacts_dir: str = RunOptions().artifacts_dir,
) -> ConfigRun:
    """Fine-tune one config and evaluate it on test; returns paths and metrics (small).

    With an fsspec URL as ``artifacts_dir`` the adapter is uploaded there and the returned
    ``adapter_dir`` is its URL. The result is also written to the artifacts root
    (``results/<flow run id>.json``): a parent on another machine reads it there, not from this
    worker's Prefect home.
    """
    workdir = str(
        local_root(artifacts_dir) if is_url(artifacts_dir) else resolve_path(artifacts_dir)
    )
    prepared = prepare_data_fresh(data, workdir)
    result = train_config_fresh(prepared, hp, train, workdir).result()
    run = ConfigRun(training=result, test=evaluate_on_test(result, prepared, train))
    if is_url(artifacts_dir):
        url = upload_dir(
            result.adapter_dir, remote_path(artifacts_dir, result.adapter_dir, mirror=Path(workdir))
        )
        run = run.model_copy(update={"training": result.model_copy(update={"adapter_dir": url})})
    run_id = flow_run.get_id()
    if run_id is not None:
        put_text(result_location(artifacts_dir, run_id), run.model_dump_json())
    return run


if __name__ == "__main__":
    from sentiment_lora.config import GRIDS

    name = sys.argv[1] if len(sys.argv) > 1 else GRIDS["quick"][0].name
    hp = next(h for grid in GRIDS.values() for h in grid if h.name == name)
    print(sst2_train_config(hp=hp).training.model_dump_json(indent=2))
