"""The event contract: every event has one typed payload, both senders serialise it, and every
alerts.yaml template renders against each payload it can receive (a field it names that the
payload lacks fails here, not silently in production)."""

import importlib.util
import json
from pathlib import Path

import jinja2
import pytest

from sentiment_lora.evidence.data_diff import DriftTest
from sentiment_lora.operations import events
from sentiment_lora.operations.events import (
    CHAMPION_PROMOTED,
    DATA_DRIFT,
    PAYLOADS,
    ChampionChanged,
    ChampionKept,
    DataDrifted,
    DataUpdated,
    Event,
    send_event,
)

ROOT = Path(__file__).resolve().parents[3]


def _alerts():
    spec = importlib.util.spec_from_file_location("alerts", ROOT / "scripts" / "alerts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_alerts(ROOT / "alerts.yaml")


SAMPLES = {
    ChampionChanged: ChampionChanged(
        run_id="r-1", version="v0002", previous_version="v0001", config_name="all-r16",
        test_accuracy=0.87, test_f1_macro=0.869, reason="non-inferior on test",
    ),
    ChampionKept: ChampionKept(
        run_id="r-2", outcome="kept", champion_run_id="r-1", config_name="all-r16",
        test_accuracy=0.86, reason="not significantly better than the champion on test",
    ),
    DataUpdated: DataUpdated(
        version="v0002", sha256="a" * 64, rows_added=9, rows_relabelled=0, rows=12,
        previous_sha256="b" * 64, rows_held_out=1,
    ),
    DataDrifted: DataDrifted(
        run_id="r-1",
        tests=[
            DriftTest(
                name="class_balance", split="train", statistic=9.1, pvalue=0.002,
                pvalue_holm=0.008, method="chi-square", n_before=100, n_after=120,
                significant=True, verdict="the class balance changed",
            ).model_dump(mode="json")
        ],
        summary=["the class balance changed"],
    ),
}  # fmt: skip


def test_every_event_name_has_a_payload_model_with_a_sample() -> None:
    assert set(PAYLOADS.values()) == set(SAMPLES)


def _render(text: str, event: Event) -> str:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    environment.filters["ui_url"] = lambda _: None
    context = {
        "event": {
            "event": event.name,
            "resource": {"name": "/reg"},
            "payload": event.payload_json(),
        }
    }
    return environment.from_string(text).render(context)


OUR_ALERTS = [a for a in _alerts().automations if set(a.trigger.expect) & set(PAYLOADS)]


def test_the_project_alerts_on_its_own_events() -> None:
    names = {name for alert in OUR_ALERTS for name in alert.trigger.expect}
    assert names >= {CHAMPION_PROMOTED, DATA_DRIFT}


@pytest.mark.parametrize("alert", OUR_ALERTS, ids=lambda a: a.name)
def test_alert_templates_name_only_fields_of_their_payloads(alert) -> None:
    for name in set(alert.trigger.expect) & set(PAYLOADS):
        payload = SAMPLES[PAYLOADS[name]]
        text = _render(alert.text, Event(name=name, resource={}, payload=payload))
        assert payload.run_id in text  # StrictUndefined: a field the payload lacks raises


def test_a_template_naming_a_missing_field_fails() -> None:
    event = Event(name=DATA_DRIFT, resource={}, payload=SAMPLES[DataDrifted])
    with pytest.raises(jinja2.UndefinedError, match="version"):
        _render("{{ event.payload.version }}", event)
    with pytest.raises(jinja2.UndefinedError, match="p_value"):
        _render("{% for t in event.payload.tests %}{{ t.p_value }}{% endfor %}", event)


def test_the_rest_sender_serialises_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = []
    monkeypatch.setattr(events, "_post_json", lambda url, body, headers: sent.append((url, body)))
    event = Event(name=CHAMPION_PROMOTED, resource={"prefect.resource.id": "x"},
                  payload=SAMPLES[ChampionChanged])  # fmt: skip
    send_event(event, url="http://127.0.0.1:4200/api/")
    ((url, [body]),) = sent
    assert url == "http://127.0.0.1:4200/api/events"
    assert body["event"] == CHAMPION_PROMOTED and body["payload"] == event.payload_json()
    assert json.loads(json.dumps(body))["payload"]["test_accuracy"] == 0.87


def test_champion_kept_is_built_from_a_decision_that_promoted_nothing(tmp_path: Path) -> None:
    from sentiment_lora.operations.gate import as_dry_run, decide
    from tests.unit.operations.test_registry import LABELS, _record

    champion = _record("a", set(range(10)), data="d1")
    kept = decide(_record("b", set(range(12)), data="d1"), champion, labels=LABELS)
    event = events.champion_kept(kept, outcome="kept", registry_dir=tmp_path)
    assert event.name == events.CHAMPION_KEPT
    assert event.resource == events.registry_resource(tmp_path)  # where promotions are sent
    assert event.payload_json() == {
        "run_id": "run-b", "outcome": "kept", "champion_run_id": "run-a", "config_name": "b",
        "test_accuracy": kept.challenger.test_accuracy, "reason": kept.reason,
    }  # fmt: skip
    promoted = decide(_record("c", set(), data="d1"), champion, labels=LABELS)
    with pytest.raises(ValueError, match="promoted"):
        events.champion_kept(promoted, outcome="promoted", registry_dir=tmp_path)
    dry = events.champion_kept(as_dry_run(promoted), outcome="dry run", registry_dir=tmp_path)
    assert dry.payload_json()["reason"].startswith("dry run: would promote")
