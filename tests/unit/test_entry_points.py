"""Hostile options and files on the entry points beside the pipeline and predict: the work-pool
child (flows/train_config.py), scripts/prefect_stack.py, scripts/alerts.py and
``sentiment-lora export``. Each ends as one line naming the option or file, exit 2."""

import importlib.util
import json
import socket
from pathlib import Path
from types import ModuleType

import pytest

from sentiment_lora import cli
from sentiment_lora.training.data import DataFormatError

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


def _argparse_error(capsys, call) -> str:
    """argparse's own convention: usage, then one ``prog: error: ...`` line, exit 2."""
    with pytest.raises(SystemExit) as exit_:
        call()
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# flows/train_config.py ---------------------------------------------------------------------


@pytest.fixture
def train_config(monkeypatch) -> ModuleType:
    """flows.train_config with a flow that must not run (it would train)."""
    from flows import train_config

    def no_run(**parameters):
        raise AssertionError(f"the flow ran with {parameters}")

    monkeypatch.setattr(train_config, "sst2_train_config", no_run)
    return train_config


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nosuch"], "error: argument config: invalid choice: 'nosuch'"),
        (["--help-me"], "error: unrecognized arguments: --help-me"),
    ],
)
def test_train_config_names_an_unknown_config(train_config, capsys, argv, expected) -> None:
    assert expected in _argparse_error(capsys, lambda: train_config.main(argv))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--max-length", "0"], "error: --max-length: Input should be greater than or equal to 8"),
        (["--validation-fraction", "2"], "error: --validation-fraction: Input should be less"),
        (["--artifacts-dir", ""], "error: --artifacts-dir: String should have at least 1"),
    ],
)
def test_train_config_option_errors_are_one_line(train_config, capsys, argv, expected) -> None:
    assert train_config.main(argv) == 2
    assert _one_error_line(capsys).startswith(expected)


def test_train_config_a_bad_row_found_by_the_flow_is_one_line(train_config, monkeypatch, capsys):
    def bad_row(**_):
        raise DataFormatError("data/train.tsv", "label must be 0 or 1, got '0.0'", 3)

    monkeypatch.setattr(train_config, "sst2_train_config", bad_row)
    assert train_config.main([]) == 2
    assert _one_error_line(capsys) == "error: data/train.tsv:3: label must be 0 or 1, got '0.0'"
    with pytest.raises(DataFormatError):
        train_config.main(["--debug"])


# scripts/prefect_stack.py ------------------------------------------------------------------


@pytest.fixture
def stack(monkeypatch) -> ModuleType:
    """scripts/prefect_stack.py with servers and workers that must not start."""
    module = _script("prefect_stack")
    for name in ("start_server", "deploy", "start_worker", "start_report_server"):
        monkeypatch.setattr(module, name, lambda *a, _name=name, **k: pytest.fail(_name))
    return module


@pytest.fixture
def busy_port():
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status", "--port", "70000"], "error: --port 70000: Input should be less than or equal"),
        (["server", "--port", "-1"], "error: --port -1: Input should be greater than or equal"),
        (["status", "--host", ""], "error: --host '': must be a host name or an IP address"),
        (["up", "--host", "nosuch.invalid"], "error: --host nosuch.invalid: not a known host"),
        (["status", "--db-port", "0"], "error: --db-port 0: must be a TCP port, 1 to 65535"),
        (["server", "--port", "BUSY"], "address already in use; stop the server there"),
        (["down", "--home", "FILE"], "error: --home FILE: not a directory"),
    ],
)
def test_prefect_stack_option_errors_are_one_line(
    stack, busy_port, tmp_path: Path, capsys, argv, expected
) -> None:
    afile = tmp_path / "a-file"
    afile.touch()

    def fill(text: str) -> str:
        return text.replace("BUSY", str(busy_port)).replace("FILE", str(afile))

    assert stack.main([fill(a) for a in argv]) == 2
    assert fill(expected) in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nosuch"], "error: argument command: invalid choice: 'nosuch'"),
        (["status", "--db", "nosuch"], "error: --db (or SENTIMENT_LORA_DB) must be sqlite or"),
        (["status", "--port", "http"], "error: argument --port: invalid int value: 'http'"),
    ],
)
def test_prefect_stack_argparse_errors(stack, capsys, argv, expected) -> None:
    assert expected in _argparse_error(capsys, lambda: stack.main(argv))


def test_the_scripts_share_the_one_boundary_and_its_debug_flag(stack, tmp_path: Path) -> None:
    from sentiment_lora.errors import UserError

    with pytest.raises(UserError, match="--port 70000"):  # --debug: the traceback
        stack.main(["status", "--port", "70000", "--debug"])
    bad = tmp_path / "alerts.yaml"
    bad.write_text("webhook: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match="invalid YAML"):
        _script("alerts").main(["--file", str(bad), "--debug"])


# scripts/alerts.py -------------------------------------------------------------------------

GOOD_ALERTS = "webhook: {env: X, block: y}\nautomations: []\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("webhook: {env: X, block: y\nautomations: []\n", ":2:12: invalid YAML: expected ','"),
        ("webhook: [\n", ":2:1: invalid YAML: expected the node content"),
        ("webhook: {env: X, block: y}\nautomations: 3\n", ": automations: Input should be a"),
        (GOOD_ALERTS + "extra: 1\n", ": extra: Extra inputs are not permitted"),
        ("webhook: {env: 1}\nautomations: []\n", ": webhook.env: Input should be a valid string"),
        (
            GOOD_ALERTS.replace("[]", "\n  - {name: a, text: t, trigger: {posture: Sideways}}"),
            ": automations.0.trigger.posture: Input should be",
        ),
        ("", ": Input should be a valid dictionary"),
        ("- a\n- b\n", ": Input should be a valid dictionary"),
        (b"\xff\xfe", ": not UTF-8 (byte at offset 0)"),
        (None, ": cannot read it (Is a directory)"),
    ],
)
def test_alerts_a_damaged_file_is_one_line(
    tmp_path: Path, monkeypatch, capsys, content, expected
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    path = tmp_path / "alerts.yaml"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    assert _script("alerts").main(["--file", str(path)]) == 2
    assert _one_error_line(capsys).startswith(f"error: {path}{expected}")


# sentiment-lora export ---------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory whose model/ has valid metadata (nothing else: no export gets far)."""
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "sentiment_lora.json").write_text(json.dumps({"base_model": "embedded"}))
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("source", "out", "expected"),
    [
        ("nosuch", None, "RUN_DIR: {tmp}/nosuch is not a run directory or a model directory"),
        ("empty", None, "RUN_DIR: {tmp}/empty is not a run directory or a model directory"),
        ("run", "run/model", "--out: {tmp}/run/model is the source model directory"),
        ("run", "run", "--out: {tmp}/run holds the source model {tmp}/run/model"),
        ("run", ".", "--out: {tmp} holds the source model"),
        ("run", "run/model/onnx", "--out: {tmp}/run/model/onnx is inside the source model"),
        ("run", "a-file", "--out: {tmp}/a-file is a file, not a directory"),
        ("run", "a-file/onnx", "--out: cannot create {tmp}/a-file: Not a directory"),
        ("run", "full", "--out: {tmp}/full is a directory that is not an ONNX export"),
    ],
)
def test_export_refuses_what_it_cannot_use_or_would_destroy(
    run_dir: Path, tmp_path: Path, capsys, source, out, expected
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").touch()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = ["export", str(tmp_path / source), *(["--out", f"{tmp_path}/{out}"] if out else [])]
    assert cli.main(argv) == 2
    assert _one_error_line(capsys).startswith(f"error: {expected.format(tmp=tmp_path)}")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # untouched


def test_export_into_a_read_only_directory(run_dir: Path, tmp_path: Path, monkeypatch, capsys):
    """Simulated (root writes into a chmod 555 directory): creating --out is refused."""
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    mkdir = Path.mkdir

    def refuse(self: Path, *args, **kwargs) -> None:
        if self.is_relative_to(read_only):
            raise PermissionError(13, "Permission denied", str(self))
        mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert cli.main(["export", str(run_dir), "--out", str(read_only / "onnx")]) == 2
    assert _one_error_line(capsys) == f"error: --out: cannot create {read_only}: Permission denied"
