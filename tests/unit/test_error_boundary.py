"""One error boundary per entry point: an error in the input is one line and exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment_lora.cli import main
from sentiment_lora.training.modeling import ModelLoadError
from tasks.caching import retry_unless_user_error
from tests.conftest import write_tsv

ROOT = Path(__file__).resolve().parents[2]


def test_cli_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    sentences = tmp_path / "in.txt"
    sentences.write_text("a fine film\n", encoding="utf-8")
    assert main(["predict", "--model-dir", str(not_a_model), str(sentences)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: model-dir: ")
    with pytest.raises(ModelLoadError):
        main(["--debug", "predict", "--model-dir", str(not_a_model), str(sentences)])


class _Failed:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def result(self) -> None:
        raise self.exc


def test_user_errors_are_not_retried() -> None:
    from sentiment_lora.training.data import DataFormatError

    assert not retry_unless_user_error(None, None, _Failed(DataFormatError("x.tsv", "bad", 3)))
    assert retry_unless_user_error(None, None, _Failed(ConnectionError("flaky")))


def _bad_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    rows = [f"a perfectly good sentence number {i}\t{i % 2}" for i in range(40)]
    rows[1] = "a sentence with a float label\t0.0"  # physical line 3 of the file
    write_tsv(data / "train.tsv", rows)
    write_tsv(data / "dev.tsv", rows[2:12])
    return data


# `python flows/full.py` with the preflight's data check a no-op, so the bad row is found by
# the data task inside the running flow; then the flow run's state as the server keeps it.
_FLOW_WITHOUT_DATA_PREFLIGHT = """
import sys
sys.path.insert(0, sys.argv[1])
import flows.full
from sentiment_lora.operations import preflight
preflight.check_sst2 = lambda data: None
code = flows.full.main(sys.argv[2:])
from prefect.client.orchestration import get_client
from prefect.client.schemas.sorting import FlowRunSort
with get_client(sync_client=True) as client:
    run = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
print(f"state: {run.state.type.value}: {run.state.message}")
sys.exit(code)
"""


def test_a_bad_row_found_inside_the_flow_is_one_line_and_exit_2(tmp_path: Path) -> None:
    data = _bad_data(tmp_path)
    command = [
        sys.executable, "-c", _FLOW_WITHOUT_DATA_PREFLIGHT, str(ROOT),
        "--data-dir", str(data),
        "--reports-dir", str(tmp_path / "reports"),
        "--artifacts-dir", str(tmp_path / "artifacts"),
        "--registry-dir", str(tmp_path / "registry"),
    ]  # fmt: skip
    runs = [  # at once, each with its own Prefect home (a temporary server each: ~20 s)
        subprocess.Popen(
            argv,
            cwd=tmp_path,
            env={**os.environ, "PREFECT_HOME": str(tmp_path / home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv, home in ((command, "home"), ([*command, "--debug"], "debug-home"))
    ]
    (out, err), (_, debug_err) = (run.communicate(timeout=300) for run in runs)
    assert runs[0].returncode == 2, err[-3000:]
    assert "Traceback" not in out + err
    message = f"{data / 'train.tsv'}:3: label must be 0 or 1, got '0.0'"
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {message}"], err[-3000:]  # once, on one line
    state = out.splitlines()[-1]
    assert state.startswith("state: FAILED: ") and message in state, out[-3000:]
    assert runs[1].returncode == 1 and "Traceback" in debug_err, debug_err[-3000:]
    assert f"DataFormatError: {message}" in debug_err  # raised by the data task
