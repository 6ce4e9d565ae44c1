"""``--data-version``: a recorded version checked out as a data directory of its own."""

from pathlib import Path

import pytest

from sentiment_lora.config import DataConfig, RunOptions, build_pipeline_config
from sentiment_lora.operations.data_checkout import checkout_version, with_data_version
from sentiment_lora.operations.data_manifest import find_version, read_manifest, version_path
from sentiment_lora.operations.data_versions import DataVersionError, add_rows
from sentiment_lora.operations.preflight import preflight
from tests.conftest import write_tsv


@pytest.fixture
def versioned(tmp_path: Path) -> Path:
    """A data directory with three versions: the original, +2 rows (one held out), +1 row."""
    data = tmp_path / "live"
    data.mkdir()
    write_tsv(data / "train.tsv", [f"an original sentence {i}\t{i % 2}" for i in range(20)])
    write_tsv(data / "dev.tsv", ["a test sentence\t1", "another one\t0"])
    add_rows(
        data, write_tsv(tmp_path / "a.tsv", ["new one\t1", "new two\t0"]), holdout_fraction=0.5
    )
    add_rows(data, write_tsv(tmp_path / "b.tsv", ["new three\t1"]), holdout_fraction=0)
    assert [v.version for v in read_manifest(data).versions] == ["v0001", "v0002", "v0003"]
    return data


def test_a_version_checks_out_with_its_own_bytes_and_manifest(versioned: Path, tmp_path) -> None:
    out = checkout_version(versioned, "v0002", tmp_path / "cache")
    v2 = read_manifest(versioned).versions[1]
    assert (out / "train.tsv").read_bytes() == version_path(versioned, v2).read_bytes()
    assert (out / "train.tsv").read_bytes() != (versioned / "train.tsv").read_bytes()
    assert (out / "holdout.tsv").read_bytes() == (versioned / v2.holdout_file).read_bytes()
    assert (out / "dev.tsv").read_bytes() == (versioned / "dev.tsv").read_bytes()
    assert [v.version for v in read_manifest(out).versions] == ["v0001", "v0002"]
    assert find_version(out, v2.sha256).version == "v0002"  # the run's results name it
    assert checkout_version(versioned, "v0002", tmp_path / "cache") == out  # made once
    original = checkout_version(versioned, "v0001", tmp_path / "cache")
    assert not (original / "holdout.tsv").exists()


def test_unknown_or_damaged_versions_are_refused_and_leave_nothing(
    versioned: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataVersionError, match=r"^data_version: v0009 is not recorded in .*"):
        checkout_version(versioned, "v0009", tmp_path / "cache")
    v1 = read_manifest(versioned).versions[0]
    version_path(versioned, v1).write_text("sentence\tlabel\ntampered\t1\n")
    with pytest.raises(DataVersionError, match="sha256 is not the one the manifest recorded"):
        checkout_version(versioned, "v0001", tmp_path / "cache")
    assert list((tmp_path / "cache" / "data-versions").iterdir()) == []


def test_the_preflight_names_an_unknown_version_and_the_config_reads_the_checkout(
    versioned: Path, tmp_path: Path
) -> None:
    options = RunOptions(
        reports_dir=str(tmp_path / "r"),
        artifacts_dir=str(tmp_path / "a"),
        registry_dir=str(tmp_path / "g"),
    )
    config = build_pipeline_config(
        "quick", data=DataConfig(data_dir=str(versioned), data_version="v0007"), options=options
    )
    with pytest.raises(DataVersionError, match="data_version: v0007 is not recorded"):
        preflight(config)
    assert not (tmp_path / "a" / "data-versions").exists()
    two = config.model_copy(
        update={"data": config.data.model_copy(update={"data_version": "v0002"})}
    )
    reading = with_data_version(two, tmp_path / "a")
    assert Path(reading.data.data_dir).parent == tmp_path / "a" / "data-versions"
    assert reading.data.data_version == "v0002" and reading.grid == config.grid
    unversioned = config.model_copy(update={"data": DataConfig()})
    assert with_data_version(unversioned, tmp_path) is unversioned  # no version: as it is
    with pytest.raises(ValueError, match="data_version"):
        DataConfig(data_version="3")
