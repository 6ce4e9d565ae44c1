"""The sentiment-lora console command."""

import hashlib
import json
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from sentiment_lora.cli import main
from sentiment_lora.operations import events
from sentiment_lora.operations.data_manifest import read_manifest
from sentiment_lora.operations.registry import champion_model_dir
from sentiment_lora.paths import LATEST, MODEL_DIR
from sentiment_lora.training.inference import SentimentAnalyzer
from tests.conftest import write_tsv


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path) -> Path:
    """The shared tiny LoRA model directory (tests/conftest.py)."""
    return tiny_model_dir


def test_predict_writes_one_json_object_per_line(model_dir: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.txt"
    src.write_text("a wonderful film\n\n   \nan awful film\r\n", encoding="utf-8")
    assert main(["predict", "--model-dir", str(model_dir), str(src)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # blank lines skipped
    objs = [json.loads(line) for line in lines]
    assert [o["text"] for o in objs] == ["a wonderful film", "an awful film"]
    for o in objs:
        assert o["label"] in ("negative", "positive")
        assert o["confidence"] == max(o["probabilities"].values())


def test_predict_rejects_non_utf8_and_missing_files(
    model_dir: Path, tmp_path: Path, capsys
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9\n")
    assert main(["predict", "--model-dir", str(model_dir), str(bad)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err
    assert main(["predict", "--model-dir", str(model_dir), str(tmp_path / "none.txt")]) == 2
    assert main(["predict", "--model-dir", str(tmp_path / "no-model"), str(bad)]) == 2
    assert "--model-dir" in capsys.readouterr().err


def test_predict_on_an_empty_file_writes_nothing(model_dir: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["predict", "--model-dir", str(model_dir), str(empty)]) == 0
    assert capsys.readouterr().out == ""


def test_predict_without_model_dir_loads_the_champion(
    model_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """The registry's champion wins over reports/latest/model; without one, latest is used."""
    monkeypatch.chdir(tmp_path)  # predict's defaults are registry/ and reports/ in the cwd
    champion = shutil.copytree(model_dir, champion_model_dir(tmp_path / "registry"))
    latest = tmp_path / "reports" / LATEST / MODEL_DIR
    latest.mkdir(parents=True)  # a directory, but no model: loading it would fail
    (tmp_path / "in.txt").write_text("a wonderful film\n", encoding="utf-8")
    loaded: list[Path] = []
    real_load = SentimentAnalyzer.load.__func__

    def recording_load(cls, path, **options):
        loaded.append(Path(path).resolve())
        return real_load(cls, path, **options)

    monkeypatch.setattr(SentimentAnalyzer, "load", classmethod(recording_load))
    assert main(["predict", "in.txt"]) == 0
    assert loaded == [champion.resolve()]
    assert json.loads(capsys.readouterr().out)["text"] == "a wonderful film"

    shutil.rmtree(champion)  # no champion: the newest run's best model
    latest.rmdir()
    shutil.copytree(model_dir, latest)
    assert main(["predict", "in.txt"]) == 0
    assert loaded[-1] == latest.resolve()


def _registry_with_runs(registry: Path, tmp_path: Path) -> None:
    """Two promoted versions (a, b) and their runs in the ledger."""
    from sentiment_lora.operations.registry import ModelRecord, promote
    from sentiment_lora.operations.run_records import PublishedRun, append_run_record

    for name, f1 in (("a", 0.81), ("b", 0.86)):
        model = tmp_path / f"model-{name}"
        model.mkdir()
        (model / "adapter_model.safetensors").write_bytes(name.encode())
        record = ModelRecord(
            run_id=f"run-{name}",
            config_name=f"cfg-{name}",
            model_key=name,
            test_accuracy=f1 + 0.01,
            test_f1_macro=f1,
            test_set_hash="t",
            predictions=[1, 0],
        )
        promote(registry, record, model)
        append_run_record(
            registry,
            PublishedRun(
                run_id=record.run_id,
                triggered_by="ui",
                data={"fingerprint": "f", "train": 4},
                best_config=record.config_name,
                test_accuracy=record.test_accuracy,
                test_f1_macro=record.test_f1_macro,
                decision=None,
            ),
        )


def test_runs_prints_the_ledger_as_a_table(tmp_path: Path, capsys) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    assert main(["runs", "--registry-dir", str(registry)]) == 0
    assert capsys.readouterr().out.startswith("no runs recorded in")
    _registry_with_runs(registry, tmp_path)
    where = ["--registry-dir", str(registry)]
    assert (
        main(["champion", "rollback", "v0001", "--reason", "b is worse on negation", *where]) == 0
    )
    capsys.readouterr()
    assert main(["runs", *where]) == 0
    header, *rows = [line.split("  ") for line in capsys.readouterr().out.splitlines()]
    cells = [[c.strip() for c in row if c.strip()] for row in (header, *rows)]
    assert cells[0] == [
        "time",
        "run id",
        "trigger",
        "best config",
        "test acc",
        "macro-F1",
        "gate",
        "champion",
    ]
    assert cells[1][1:] == ["run-a", "ui", "cfg-a", "0.8200", "0.8100", "gate off", "v0001"]
    assert cells[2][1:] == ["run-b", "ui", "cfg-b", "0.8700", "0.8600", "gate off", "v0002"]
    assert cells[3][1:] == ["-", "-", "-", "-", "-", "rollback: b is worse on negation", "v0001"]
    assert main(["runs", "--registry-dir", str(tmp_path / "none")]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --registry-dir: {tmp_path / 'none'} is not a directory\n"
    )


def test_champion_list_marks_the_champion_and_rollback_moves_it(tmp_path: Path, capsys) -> None:
    registry = tmp_path / "registry"
    _registry_with_runs(registry, tmp_path)
    assert main(["champion", "list", "--registry-dir", str(registry)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == "version run id config test acc macro-F1 promoted at".split()
    assert out[1].split()[:5] == ["v0001", "run-a", "cfg-a", "0.8200", "0.8100"]
    assert out[2].split()[:6] == ["*", "v0002", "run-b", "cfg-b", "0.8700", "0.8600"]
    assert "(promotion)" in out[-1]

    where = ["--registry-dir", str(registry)]
    assert main(["champion", "rollback", "v0001", "--reason", "regression", *where]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "champion: v0001 (run run-a, config cfg-a, test macro-F1 0.8100), was v0002",
        "reason: regression",
    ]
    assert main(["champion", "list", "--registry-dir", str(registry)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["*", "v0001"] and out[2].split()[0] == "v0002"
    assert out[-1].endswith("(rollback): regression")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["v0007", "--reason", "why"], "error: VERSION: unknown version 'v0007'"),
        (["v0001", "--reason", " "], "error: --reason: must not be empty"),
        (["v0002", "--reason", "why"], "error: VERSION: v0002 is the champion already"),
    ],
)
def test_champion_rollback_errors_are_one_line_with_exit_2(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    registry = tmp_path / "registry"
    _registry_with_runs(registry, tmp_path)
    before = (registry / "champion.json").read_bytes()
    assert main(["champion", "rollback", *argv, "--registry-dir", str(registry)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert captured.out == ""
    assert (registry / "champion.json").read_bytes() == before


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:50])


def _lose_champion(registry: Path) -> None:
    shutil.rmtree(registry / "versions" / "v0002")


@pytest.mark.parametrize(
    ("damage", "command", "message"),
    [
        (lambda r: _cut(r / "champion.json"), ["champion", "list"], "champion.json: Invalid JSON"),
        (
            lambda r: _cut(r / "champion.json"),
            ["champion", "rollback", "v0001", "--reason", "x"],
            "champion.json: Invalid JSON",
        ),
        (
            lambda r: _cut(r / "versions" / "v0001" / "record.json"),
            ["champion", "list"],
            "versions/v0001/record.json: Invalid JSON",
        ),
        (
            lambda r: _cut(r / "versions" / "v0001" / "record.json"),
            ["champion", "rollback", "v0001", "--reason", "x"],
            "versions/v0001/record.json: Invalid JSON",
        ),
        (
            _lose_champion,
            ["champion", "list"],
            "champion.json: the champion v0002 is not in",
        ),
        (
            lambda r: (r / "ledger.jsonl").write_text('{"kind": "run", "run_id": 5}\n{}\n'),
            ["runs"],
            "ledger.jsonl:1: not a ledger record: run.run_id: Input should be a valid string",
        ),
    ],
    ids=["list, champion cut", "rollback, champion cut", "list, record cut",
         "rollback, record cut", "list, champion lost", "runs, ledger retyped"],
)  # fmt: skip
def test_damaged_registry_files_are_one_line_naming_the_file(
    tmp_path: Path, capsys, damage, command: list[str], message: str
) -> None:
    registry = tmp_path / "registry"
    _registry_with_runs(registry, tmp_path)
    damage(registry)
    assert main([*command, "--registry-dir", str(registry)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {registry}/{message}"), captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""


def test_rollback_repairs_a_champion_whose_version_is_lost(tmp_path: Path, capsys) -> None:
    registry = tmp_path / "registry"
    _registry_with_runs(registry, tmp_path)
    _lose_champion(registry)
    where = ["--registry-dir", str(registry)]
    assert main(["champion", "rollback", "v0001", "--reason", "v0002 was deleted", *where]) == 0
    assert capsys.readouterr().out.startswith("champion: v0001 (run run-a")
    assert main(["champion", "list", *where]) == 0


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    """A writable data directory: three training rows; no Prefect server configured (importing
    flows/ sets PREFECT_API_URL when a local server runs)."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    d = tmp_path / "sst2"
    d.mkdir()
    write_tsv(d / "train.tsv", ["a good film\t1", "a bad film\t0", "warm and funny\t1"])
    return d


def test_data_add_prints_what_changed(data_dir: Path, tmp_path: Path, capsys) -> None:
    new = write_tsv(tmp_path / "new.tsv", ["a good film\t1", "new row\t1", "new  row\t1", "x y\t0"])
    assert main(["data", "add", str(new), "--data-dir", str(data_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 rows would be added" in out and out.endswith("dry run: nothing written\n")
    assert not (data_dir / "versions").exists()

    assert main(["data", "add", str(new), "--data-dir", str(data_dir)]) == 0
    sha = hashlib.sha256((data_dir / "train.tsv").read_bytes()).hexdigest()
    assert capsys.readouterr().out.splitlines() == [
        f"{new}: 4 rows read, 2 duplicates dropped "
        "(1 already in train.tsv, 1 repeated in the file)",
        f"{data_dir / 'train.tsv'}: 2 rows added, 0 relabelled (3 -> 5 rows)",
        f"new version v0002: sha256 {sha}",
        f"previous version v0001: sha256 {read_manifest(data_dir).versions[0].sha256}, "
        "kept as versions/train.v0001.tsv",
    ]
    assert main(["data", "add", str(new), "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"nothing to add: {data_dir / 'train.tsv'} unchanged (5 rows)"
    )


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        (["fine row\t1", "bad row\tpositive"], [], "new.tsv:3: label must be 0 or 1"),
        (["a bad film\t1"], [], "new.tsv:2: sentence already in"),
        (["fine row\t1"], ["--data-dir", "missing"], "missing: data directory not found"),
    ],
)
def test_data_add_errors_are_one_line_with_exit_2(
    data_dir: Path, tmp_path: Path, capsys, rows: list[str], extra: list[str], message: str
) -> None:
    new = write_tsv(tmp_path / "new.tsv", rows)
    before = (data_dir / "train.tsv").read_bytes()
    assert main(["data", "add", str(new), "--data-dir", str(data_dir), *extra]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert message in captured.err and captured.out == ""
    assert (data_dir / "train.tsv").read_bytes() == before
    assert not (data_dir / "versions").exists()


def test_data_add_refuses_a_symlinked_data_dir(data_dir: Path, tmp_path: Path, capsys) -> None:
    link = tmp_path / "link"
    link.symlink_to(data_dir)
    new = write_tsv(tmp_path / "new.tsv", ["fine row\t1"])
    assert main(["data", "add", str(new), "--data-dir", str(link)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {link}: is a symbolic link") and "copy it first" in err
    assert sorted(p.name for p in data_dir.iterdir()) == ["train.tsv"]


def test_data_add_emits_the_event_only_with_a_prefect_server(
    data_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    sent: list[tuple[str, object, dict]] = []
    monkeypatch.setattr(events, "_post_json", lambda *args: sent.append(args))
    where = ["--data-dir", str(data_dir)]
    assert main(["data", "add", str(write_tsv(tmp_path / "a.tsv", ["row a\t1"])), *where]) == 0
    assert sent == []  # no server configured

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api/")
    monkeypatch.setenv("PREFECT_API_KEY", "secret")
    assert main(["data", "add", str(write_tsv(tmp_path / "b.tsv", ["row b\t0"])), *where]) == 0
    ((url, body, headers),) = sent
    assert url == "http://127.0.0.1:4200/api/events"
    assert headers["Authorization"] == "Bearer secret"
    (event,) = body
    version = read_manifest(data_dir).versions[-1]
    assert event["event"] == "sentiment-lora.data.updated"
    assert event["resource"] == {
        "prefect.resource.id": "sentiment-lora.data",
        "sentiment-lora.data-dir": str(data_dir.resolve()),
    }
    assert event["payload"]["version"] == version.version == "v0003"
    assert event["payload"]["sha256"] == version.sha256
    assert event["payload"]["rows_added"] == 1
    assert capsys.readouterr().out.endswith(
        "sent sentiment-lora.data.updated to http://127.0.0.1:4200/api/\n"
    )

    # nothing added, or a dry run: no event
    assert main(["data", "add", str(tmp_path / "b.tsv"), *where]) == 0
    assert (
        main(["data", "add", str(write_tsv(tmp_path / "c.tsv", ["c\t1"])), *where, "--dry-run"])
        == 0
    )
    assert len(sent) == 1


def test_data_add_event_is_what_the_prefect_server_accepts(
    data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from prefect.server.events.schemas.events import Event
    from pydantic import TypeAdapter

    received: list[tuple[str, dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{server.server_port}/api")
        new = write_tsv(tmp_path / "new.tsv", ["row a\t1"])
        assert main(["data", "add", str(new), "--data-dir", str(data_dir)]) == 0
    finally:
        server.shutdown()
    ((path, headers, body),) = received
    assert path == "/api/events"
    assert headers["Content-Type"] == "application/json"
    (event,) = TypeAdapter(list[Event]).validate_json(body)  # the server's own model
    assert event.event == "sentiment-lora.data.updated"
    assert event.resource.id == "sentiment-lora.data"
    assert event.payload["rows_added"] == 1


def test_data_add_reports_an_event_it_could_not_send(
    data_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    new = write_tsv(tmp_path / "new.tsv", ["row a\t1"])
    assert main(["data", "add", str(new), "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: v0002 was recorded, but the event sentiment-lora.data.updated")
    assert read_manifest(data_dir).versions[-1].version == "v0002"


def test_rollback_sends_its_event_with_a_prefect_server(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    sent: list[tuple[str, object, dict]] = []
    monkeypatch.setattr(events, "_post_json", lambda *args: sent.append(args))
    registry = tmp_path / "registry"
    registry.mkdir()
    _registry_with_runs(registry, tmp_path)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    where = ["--registry-dir", str(registry)]
    assert main(["champion", "rollback", "v0001", "--reason", "b regressed", *where]) == 0
    ((url, body, _),) = sent
    (event,) = body
    assert url == "http://127.0.0.1:4200/api/events"
    assert event["event"] == "sentiment-lora.champion.rolled-back"
    assert event["resource"]["prefect.resource.id"].startswith("sentiment-lora.registry.")
    assert event["payload"]["version"] == "v0001" and event["payload"]["reason"] == "b regressed"
    assert event["payload"]["run_id"] == "run-a" and event["payload"]["previous_version"] == "v0002"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve-reports", "--reports-dir", "{tmp}/absent"], "--reports-dir: {tmp}/absent is not"),
        (["runs", "--registry-dir", "{tmp}/reg"], "ledger.jsonl:1: not a ledger record"),
        (["champion", "list", "--registry-dir", "{tmp}/reg"], "champion.json"),
        (
            ["champion", "rollback", "v0009", "--reason", "x", "--registry-dir", "{tmp}/empty"],
            "VERSION:",
        ),
        (["data", "add", "{tmp}/new.tsv", "--data-dir", "{tmp}/data"], "lock held"),
    ],
    ids=["serve-reports", "runs", "champion-list", "rollback", "data-add-locked"],
)
def test_every_command_leaves_its_errors_to_the_one_boundary(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    from sentiment_lora.errors import UserError
    from sentiment_lora.operations import data_versions

    registry = tmp_path / "reg"
    registry.mkdir()
    (registry / "ledger.jsonl").write_text("not json\n")
    (registry / "champion.json").write_text("{")
    (tmp_path / "data").mkdir()
    (tmp_path / "empty").mkdir()
    write_tsv(tmp_path / "new.tsv", ["a new film\t1"])

    def locked(*_args: object, **_kw: object) -> None:
        raise TimeoutError("lock held by another addition; try again")

    monkeypatch.setattr(data_versions, "add_rows", locked)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    message = message.replace("{tmp}", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    with pytest.raises(UserError, match=message.split()[0]):  # --debug: the traceback
        main(["--debug", *argv])
