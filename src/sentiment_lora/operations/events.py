"""Prefect events sent by the command line (``data add``, ``champion rollback``).

A plain ``POST {PREFECT_API_URL}/events`` (Prefect's REST route "Create Events", which feeds
the same event pipeline as ``prefect.events.emit_event``): importing prefect takes seconds and
``src/`` imports no Prefect. Sent only when ``PREFECT_API_URL`` is set.
"""

import base64
import hashlib
import json
import os
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

DATA_UPDATED = "sentiment-lora.data.updated"
DATA_RESOURCE = "sentiment-lora.data"
CHAMPION_ROLLED_BACK = "sentiment-lora.champion.rolled-back"


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


def send_event(
    event: str, resource: dict[str, str], payload: dict[str, object], *, url: str
) -> None:
    """Send one event to the Prefect API at ``url``; OSError if it is not accepted."""
    body = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": event,
        "resource": resource,
        "related": [],
        "payload": payload,
    }
    _post_json(url.rstrip("/") + "/events", [body], _headers())


def registry_resource(registry_dir: Path | str) -> dict[str, str]:
    """The event resource of a registry: one id per registry directory (as the flow's)."""
    path = str(Path(registry_dir).resolve())
    digest = hashlib.sha256(path.encode()).hexdigest()[:12]
    return {
        "prefect.resource.id": f"sentiment-lora.registry.{digest}",
        "prefect.resource.name": path,
    }
