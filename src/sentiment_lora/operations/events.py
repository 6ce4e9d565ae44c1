"""Every event this project emits, in one place: its name, its resource and a typed payload.

These are the contract that ``alerts.yaml``'s automations and the deployment trigger match
(a test renders every template against each payload's fields). Two senders serialise the same
:class:`Event`: the flow emits through Prefect (``tasks/events.py``); the command line
(``data add``, ``champion rollback``) posts it to ``{PREFECT_API_URL}/events`` (Prefect's REST
route "Create Events", which feeds the same event pipeline): importing prefect takes seconds
and ``src/`` imports no Prefect. Adding an alert is one payload model here plus one automation.
"""

import base64
import hashlib
import json
import os
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, JsonValue

if TYPE_CHECKING:  # the builders' inputs; imported lazily where they load heavy modules
    from sentiment_lora.evidence.data_diff import DataDiff
    from sentiment_lora.operations.data_versions import DataUpdate
    from sentiment_lora.operations.gate import GateSummary
    from sentiment_lora.operations.registry import VersionRecord

CHAMPION_PROMOTED = "sentiment-lora.champion.promoted"
CHAMPION_ROLLED_BACK = "sentiment-lora.champion.rolled-back"
CHAMPION_KEPT = "sentiment-lora.champion.kept"  # a gated run that promoted nothing
DATA_UPDATED = "sentiment-lora.data.updated"
DATA_DRIFT = "sentiment-lora.data.drift"
DATA_RESOURCE = "sentiment-lora.data"  # the resource id of data events (and the trigger's)
REGISTRY_RESOURCE = "sentiment-lora.registry"  # + "." + a hash of the registry's path


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChampionChanged(_Payload):
    """A version became champion: promoted by the gate, or rolled back to."""

    run_id: str
    version: str
    previous_version: str | None
    config_name: str
    test_accuracy: float
    test_f1_macro: float
    reason: str


class ChampionKept(_Payload):
    """A gated run ended without promoting: the champion stays (with ``promoted``, every gated
    run ends in exactly one of the two events, so a digest of the week can count them)."""

    run_id: str
    outcome: str  # kept, unchanged or dry run (the ledger's word)
    champion_run_id: str | None  # None: only a dry run can keep "no champion"
    config_name: str  # the challenger's
    test_accuracy: float  # the challenger's
    reason: str


class DataUpdated(_Payload):
    """``data add`` recorded a new version of a data directory's ``train.tsv``."""

    version: str
    sha256: str
    rows_added: int
    rows_relabelled: int
    rows: int
    previous_sha256: str
    rows_held_out: int = 0


class DataDrifted(_Payload):
    """A run's data drifted significantly from the champion's."""

    run_id: str
    tests: list[dict[str, JsonValue]]  # the significant DriftTests, as JSON
    summary: list[str]


PAYLOADS: dict[str, type[_Payload]] = {
    CHAMPION_PROMOTED: ChampionChanged,
    CHAMPION_ROLLED_BACK: ChampionChanged,
    CHAMPION_KEPT: ChampionKept,
    DATA_UPDATED: DataUpdated,
    DATA_DRIFT: DataDrifted,
}


class Event(BaseModel):
    """One event as both senders send it."""

    model_config = ConfigDict(frozen=True)
    name: str
    resource: dict[str, str]
    payload: _Payload

    def payload_json(self) -> dict[str, JsonValue]:
        """The payload as plain JSON values."""
        return self.payload.model_dump(mode="json")


def registry_resource(registry_dir: Path | str) -> dict[str, str]:
    """The event resource of a registry: one id per registry directory."""
    path = str(Path(registry_dir).resolve())
    digest = hashlib.sha256(path.encode()).hexdigest()[:12]
    return {
        "prefect.resource.id": f"{REGISTRY_RESOURCE}.{digest}",
        "prefect.resource.name": path,
    }


def champion_changed(
    record: "VersionRecord", registry_dir: Path | str, *, rolled_back: bool
) -> Event:
    """The champion is now ``record``'s version (promoted, or ``rolled_back`` to)."""
    change = record.became_champion
    return Event(
        name=CHAMPION_ROLLED_BACK if rolled_back else CHAMPION_PROMOTED,
        resource=registry_resource(registry_dir),
        payload=ChampionChanged(
            run_id=record.run_id,
            version=record.version,
            previous_version=change.previous_version,
            config_name=record.config_name,
            test_accuracy=record.test_accuracy,
            test_f1_macro=record.test_f1_macro,
            reason=change.reason,
        ),
    )


def champion_kept(decision: "GateSummary", *, outcome: str, registry_dir: Path | str) -> Event:
    """The gate decided for ``decision.challenger``'s run and promoted nothing."""
    if decision.promoted:
        raise ValueError("decision: the challenger was promoted; send champion_changed")
    champion = decision.champion
    return Event(
        name=CHAMPION_KEPT,
        resource=registry_resource(registry_dir),
        payload=ChampionKept(
            run_id=decision.challenger.run_id,
            outcome=outcome,
            champion_run_id=champion.run_id if champion else None,
            config_name=decision.challenger.config_name,
            test_accuracy=decision.challenger.test_accuracy,
            reason=decision.reason,
        ),
    )


def data_updated(update: "DataUpdate") -> Event:
    """``data add`` wrote ``update.version`` (ValueError when nothing changed)."""
    if update.version is None:
        raise ValueError("update: train.tsv did not change; there is no event to send")
    return Event(
        name=DATA_UPDATED,
        resource={"prefect.resource.id": DATA_RESOURCE, "sentiment-lora.data-dir": update.data_dir},
        payload=DataUpdated(
            version=update.version.version,
            sha256=update.version.sha256,
            rows_added=update.rows_added,
            rows_relabelled=update.rows_relabelled,
            rows=update.rows_after,
            previous_sha256=update.previous.sha256,
            rows_held_out=update.rows_held_out,
        ),
    )


def data_drifted(diff: "DataDiff", *, run_id: str, data_dir: str | None) -> Event:
    """The run's data diff found significant drift."""
    return Event(
        name=DATA_DRIFT,
        resource={
            "prefect.resource.id": DATA_RESOURCE,
            "prefect.resource.name": data_dir or "glue/sst2",
        },
        payload=DataDrifted(
            run_id=run_id,
            tests=[t.model_dump(mode="json") for t in diff.tests if t.significant],
            summary=list(diff.summary),
        ),
    )


def _headers() -> dict[str, str]:
    """JSON and, when configured, the credentials Prefect's own client sends."""
    headers = {"Content-Type": "application/json"}
    if key := os.environ.get("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    elif auth := os.environ.get("PREFECT_API_AUTH_STRING"):
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return headers


def _post_json(url: str, body: object, headers: dict[str, str]) -> None:
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10):  # raises OSError unless 2xx
        pass


def api_url() -> str | None:
    """The Prefect server's API URL, if one is configured."""
    return os.environ.get("PREFECT_API_URL") or None


def send_event(event: Event, *, url: str) -> None:
    """Send ``event`` to the Prefect API at ``url``; OSError if it is not accepted."""
    body = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": event.name,
        "resource": event.resource,
        "related": [],
        "payload": event.payload_json(),
    }
    _post_json(url.rstrip("/") + "/events", [body], _headers())
