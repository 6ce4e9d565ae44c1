"""A past run reproduced: after new rows were added, ``--data-version v0001`` with a fresh
cache trains on the original train.tsv again and predicts the test set as the original run did.
Small: 300 training rows, one config, a 200-sentence test set."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness

from sentiment_lora.operations.data_versions import add_rows
from sentiment_lora.paths import PREDICTIONS_FILE, PROB_PREFIX
from sentiment_lora.training.data import read_glue_tsv
from tests.flows.small_run import ONE, small_run


def _labels(run_dir: Path) -> pd.Series:
    predictions = pd.read_csv(run_dir / PREDICTIONS_FILE)
    return predictions[f"{PROB_PREFIX}{ONE[0].name}"] >= 0.5


@pytest.mark.slow
def test_a_run_is_reproduced_on_its_data_version(sst2_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "live"
    data.mkdir()
    shutil.copy(sst2_dir / "dev.tsv", data / "dev.tsv")
    train = read_glue_tsv(sst2_dir / "train.tsv")
    train.iloc[:3000].to_csv(data / "train.tsv", sep="\t", index=False, lineterminator="\n")
    new = train.iloc[3000:4000]
    new.to_csv(tmp_path / "new.tsv", sep="\t", index=False, lineterminator="\n")
    with prefect_test_harness(server_startup_timeout=120):
        original = small_run(data, tmp_path / "first", gate="off")
        update = add_rows(data, tmp_path / "new.tsv")  # records v0001 (original) and v0002
        assert update.version.version == "v0002" and update.rows_added > 500
        version = {"data_version": "v0001"}  # and a fresh cache: tmp_path / "fresh"
        again = small_run(data, tmp_path / "fresh", data=version, gate="off")

    first = json.loads((original / "fine_tuning_results.json").read_text())
    second = json.loads((again / "fine_tuning_results.json").read_text())
    assert second["data"]["data_version"] == "v0001"
    assert (
        second["data"]["source_hashes"]["train.tsv"] == first["data"]["source_hashes"]["train.tsv"]
    )
    assert second["data"]["counts"] == first["data"]["counts"]
    same = (_labels(original) == _labels(again)).mean()
    assert same >= 0.995, same
