"""The alerts of alerts.yaml against the real stack: applied by scripts/alerts.py (what `make
deploy` runs), idempotent, and each one posting Slack-compatible JSON to a real HTTP receiver on
a loopback port: a failed pipeline run, a champion change and significant data drift."""

import importlib.util
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.events import emit_event
from prefect.events.worker import EventsWorker

from tests.e2e.conftest import ROOT, stack_module

ALERTS_SCRIPT = ROOT / "scripts" / "alerts.py"
POST_TIMEOUT_S = 60


def _load_alerts_module() -> Any:
    spec = importlib.util.spec_from_file_location("alerts", ALERTS_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


alerts = _load_alerts_module()
ALERTS = alerts.load_alerts()
NAMES = [a.name for a in ALERTS.automations]


class Receiver:
    """An HTTP server on a free loopback port that records every POST (headers and JSON body)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.end_headers()
                with receiver._changed:
                    receiver.posts.append(
                        {"content_type": self.headers.get("Content-Type"), "body": body}
                    )
                    receiver._changed.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", stack_module.free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def wait_for(
        self, matches: Callable[[str], bool], *, timeout: float = POST_TIMEOUT_S
    ) -> dict[str, Any]:
        """The first POST whose JSON ``text`` matches (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for post in self.posts:
                    text = json.loads(post["body"])["text"]  # every POST must be valid JSON
                    if matches(text):
                        return {**post, "text": text}
                left = deadline - time.monotonic()
                if left <= 0:
                    bodies = [p["body"][:300] for p in self.posts]
                    raise AssertionError(f"no matching POST in {timeout:.0f}s; got {bodies}")
                self._changed.wait(left)


def apply(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/alerts.py as `make deploy` does (bounded)."""
    return subprocess.run(
        [sys.executable, str(ALERTS_SCRIPT), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _automation_ids() -> set[uuid.UUID]:
    with get_client(sync_client=True) as client:
        return {a.id for a in client.read_automations()}


@pytest.fixture(scope="module")
def receiver(prefect_stack: dict[str, str]) -> Iterator[Receiver]:
    """The alerts applied with a receiver's URL; removed again (automations and block) after."""
    with Receiver() as rec:
        env = {**prefect_stack, ALERTS.webhook.env: rec.url}
        done = apply(env)
        assert "created" in done.stdout or "updated" in done.stdout, done.stdout
        try:
            yield rec
        finally:
            with get_client(sync_client=True) as client:
                for name in NAMES:
                    for automation in client.read_automations_by_name(name):
                        client.delete_automation(automation.id)
                block = client.read_block_document_by_name(ALERTS.webhook.block, "webhook")
                client.delete_block_document(block.id)


def test_every_text_renders_to_json_even_with_quotes() -> None:
    from prefect.server.events.jinja_filters import all_filters
    from prefect.server.utilities.user_templates import (
        register_user_template_filters,
        render_user_template_sync,
    )

    register_user_template_filters(all_filters)
    nasty = 'no "such" dir\n\\ <b> & it\'s'
    context = {
        "flow": {"name": "sst2-lora-pipeline"},
        "flow_run": {"id": "r-1", "name": nasty, "state": {"name": "Failed", "message": nasty}},
        "event": {
            "event": "sentiment-lora.champion.promoted",
            "resource": {"name": nasty},
            "payload": {"run_id": "r-1", "reason": nasty, "summary": [nasty], "tests": []},
        },
    }
    for alert in ALERTS.automations:
        text = json.loads(render_user_template_sync(alerts.payload_template(alert.text), context))
        assert set(text) == {"text"}, alert.name
        assert nasty in text["text"] and "r-1" in text["text"], (alert.name, text)


def test_without_a_url_alerts_are_off_and_nothing_changes(
    prefect_stack: dict[str, str], tmp_path: Path
) -> None:
    # A block name of its own: this test does not depend on whether another test saved one.
    block = f"sentiment-lora-alerts-{uuid.uuid4().hex[:8]}"
    off = tmp_path / "alerts.yaml"
    off.write_text(
        alerts.ALERTS_FILE.read_text().replace("block: sentiment-lora-alerts", f"block: {block}")
    )
    env = {k: v for k, v in prefect_stack.items() if k != ALERTS.webhook.env}
    before = _automation_ids()
    done = apply(env, "--file", str(off))
    assert done.stdout.strip() == (
        f"alerts are off: set {ALERTS.webhook.env} (or create the Webhook block {block})"
    )
    assert _automation_ids() == before


def test_applying_again_leaves_one_automation_per_name(
    prefect_stack: dict[str, str], receiver: Receiver
) -> None:
    env = {**prefect_stack, ALERTS.webhook.env: receiver.url}
    # A duplicate, as `prefect automation create` would leave one: applying repairs it.
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(NAMES[0])) == 1
        client.create_automation(alerts.build_automation(ALERTS.automations[0], uuid.uuid4()))
    done = apply(env)
    assert done.stdout.count("updated") == len(NAMES), done.stdout
    with get_client(sync_client=True) as client:
        for alert in ALERTS.automations:
            (automation,) = client.read_automations_by_name(alert.name)
            assert automation.enabled and alerts.MANAGED_TAG in automation.tags
            (action,) = automation.actions
            assert action.type == "call-webhook"
            assert action.payload == alerts.payload_template(alert.text)


def test_a_failed_pipeline_run_posts_its_id_and_message(
    prefect_stack: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    missing = tmp_path / 'no "such" data'  # a quote in the state message
    run = run_deployment(
        "sst2-lora-pipeline/sst2-full",
        parameters={
            "data": {"data_dir": str(missing)},
            "options": {
                "reports_dir": str(tmp_path / "reports"),
                "artifacts_dir": str(tmp_path / "artifacts"),
                "registry_dir": str(tmp_path / "registry"),
            },
        },
        timeout=180,
    )
    assert run.state.is_failed(), f"{run.state.name}: {run.state.message}"
    post = receiver.wait_for(lambda text: str(run.id) in text)
    assert post["content_type"] == "application/json"
    assert "sst2-lora-pipeline" in post["text"] and "ended Failed" in post["text"]
    assert str(missing) in post["text"], post["text"]


def test_champion_and_drift_events_post_their_payloads(receiver: Receiver) -> None:
    run_id = f"20250101-000000-{uuid.uuid4().hex[:8]}"
    registry = {
        "prefect.resource.id": "sentiment-lora.registry.0123456789ab",
        "prefect.resource.name": "/srv/registry",
    }
    champion = {
        "run_id": run_id,
        "version": "v0007",
        "previous_version": "v0006",
        "config_name": "lr2e-3-r8",
        "test_accuracy": 0.9123,
        "test_f1_macro": 0.9101,
        "reason": 'beats the champion ("McNemar p = 0.01")',
    }
    drift = {
        "run_id": run_id,
        "tests": [
            {"name": "label_balance", "split": "train", "pvalue_holm": 0.001, "significant": True}
        ],
        "summary": ["label balance shifted: 55% positive, was 45%"],
    }
    EventsWorker.drain_all(timeout=30)  # a fresh events worker, pointed at this stack
    emit_event("sentiment-lora.champion.rolled-back", resource=registry, payload=champion)
    emit_event(
        "sentiment-lora.data.drift",
        resource={"prefect.resource.id": "sentiment-lora.data", "prefect.resource.name": "d"},
        payload=drift,
    )
    EventsWorker.drain_all(timeout=30)

    text = receiver.wait_for(lambda t: run_id in t and "Champion" in t)["text"]
    assert "rolled back: version v0007" in text and champion["reason"] in text, text
    text = receiver.wait_for(lambda t: run_id in t and "drift" in t)["text"]
    assert drift["summary"][0] in text and "label_balance on train" in text, text


def test_a_run_no_worker_takes_is_alerted_as_late(
    prefect_stack: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    """A run whose queue no worker serves (a paused queue: as a stopped worker leaves it) goes
    Late; with the alert's window cut to 10 s (Prefect's least), the webhook hears about it."""
    short = tmp_path / "alerts.yaml"
    text = alerts.ALERTS_FILE.read_text(encoding="utf-8")
    assert text.count("within: 600") == 1  # the late alert's window
    short.write_text(text.replace("within: 600", "within: 10"), encoding="utf-8")  # the least
    apply({**prefect_stack, ALERTS.webhook.env: receiver.url}, "--file", str(short))
    with get_client(sync_client=True) as client:
        queue = client.create_work_queue(name=f"late-{uuid.uuid4().hex[:6]}", work_pool_name="cpu")
        client.update_work_queue(queue.id, is_paused=True)
        deployment = client.read_deployment_by_name("sst2-lora-pipeline/sst2-full")
        run = client.create_flow_run_from_deployment(deployment.id, work_queue_name=queue.name)
    try:
        post = receiver.wait_for(lambda t: str(run.id) in t and "has not started" in t, timeout=120)
        assert "went Late" in post["text"] and "sst2-full" in post["text"], post["text"]
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run.id).state.name == "Late"
    finally:
        with get_client(sync_client=True) as client:
            client.delete_flow_run(run.id)
            client.delete_work_queue_by_id(queue.id)
        apply({**prefect_stack, ALERTS.webhook.env: receiver.url})  # the real windows again
