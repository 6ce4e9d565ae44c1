"""Apply the alerts kept in alerts.yaml to a Prefect server (run by `make deploy`).

    python scripts/alerts.py                  # alerts.yaml -> the server at $PREFECT_API_URL
    python scripts/alerts.py --file my.yaml

Each entry of the file becomes one automation whose action (``call-webhook``) posts
Slack-compatible JSON, ``{"text": ...}``, to a saved ``Webhook`` block. The URL comes from the
environment variable the file names (``SENTIMENT_LORA_ALERT_WEBHOOK``), saved into the block with
``Content-Type: application/json``; without it an existing block of that name is used; with
neither, alerts are off and nothing is created or removed.

Idempotent: automations are upserted by name (``prefect automation create`` is not), and those
this script applied before (tag ``sentiment-lora-alerts``) that the file no longer names are
deleted.
"""

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import yaml
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import get_client
from prefect.events.actions import CallWebhook
from prefect.events.schemas.automations import AutomationCore, EventTrigger
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentiment_lora.errors import debug_requested, report_input_error, validation_message

ROOT = Path(__file__).resolve().parent.parent
ALERTS_FILE = ROOT / "alerts.yaml"
MANAGED_TAG = "sentiment-lora-alerts"  # marks automations applied from the file
JSON_HEADERS = {"Content-Type": "application/json"}


class WebhookSource(BaseModel):
    """Where the webhook URL comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    env: str = Field(..., description="Environment variable holding the webhook URL.")
    block: str = Field(..., description="Name of the Webhook block (saved from the URL).")


class Alert(BaseModel):
    """One automation: a Prefect event trigger and the text of its message."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(..., description="Automation name: the key of the upsert.")
    description: str = Field("", description="Shown in the Prefect UI.")
    enabled: bool = Field(True, description="Whether the server evaluates it.")
    trigger: EventTrigger = Field(..., description="A Prefect event trigger (type: event).")
    text: str = Field(..., description="Jinja template of the message's `text`.")


class AlertsFile(BaseModel):
    """The contents of alerts.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    webhook: WebhookSource
    automations: list[Alert]


def load_alerts(path: Path | str = ALERTS_FILE) -> AlertsFile:
    """Read and validate an alerts file (ValueError naming the file if it is invalid)."""
    try:
        alerts = AlertsFile.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 (byte at offset {exc.start})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ValueError(f"{path}{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except ValidationError as exc:
        raise ValueError(f"{path}: {validation_message(exc)}") from None
    names = [a.name for a in alerts.automations]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: automation names must be unique, got {names}")
    return alerts


def payload_template(text: str) -> str:
    """The webhook payload: ``{"text": <text rendered>}``, valid JSON whatever the text holds."""
    return f'{{% set text %}}{text}{{% endset %}}{{{{ {{"text": text | trim}} | tojson }}}}'


def build_automation(alert: Alert, block_document_id: UUID) -> AutomationCore:
    """The automation of ``alert``, posting to the Webhook block ``block_document_id``."""
    return AutomationCore(
        name=alert.name,
        description=alert.description,
        enabled=alert.enabled,
        tags=[MANAGED_TAG],
        trigger=alert.trigger,
        actions=[
            CallWebhook(block_document_id=block_document_id, payload=payload_template(alert.text))
        ],
    )


def _webhook_block(source: WebhookSource, url: str | None) -> tuple[Webhook, str] | None:
    """The Webhook block to post to and where its URL came from; None when there is none.

    A URL is saved into the block (its other settings and headers kept); either way the block
    ends up sending ``Content-Type: application/json``, which ``call-webhook`` does not add.
    """
    try:
        block = Webhook.load(source.block)
    except ValueError:  # no such block
        block = None
    if block is None and not url:
        return None
    headers = block.headers.get_secret_value() if block else {}
    if url or headers.get("Content-Type") != JSON_HEADERS["Content-Type"]:
        settings = (
            block.model_dump(include={"method", "verify", "allow_private_urls"}) if block else {}
        )
        Webhook(
            **settings,
            url=url or block.url.get_secret_value(),
            headers={**headers, **JSON_HEADERS},
        ).save(source.block, overwrite=True)
        block = Webhook.load(source.block)
    return block, source.env if url else f"the existing block {source.block}"


@contextmanager
def _api(env: Mapping[str, str]) -> Iterator[None]:
    """Prefect's client settings pointed at ``env``'s PREFECT_API_URL."""
    api_url = env.get("PREFECT_API_URL")
    if not api_url:
        raise ValueError("PREFECT_API_URL is not set: start the server first (make server)")
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield


def apply_alerts(
    env: Mapping[str, str] | None = None,
    *,
    path: Path | str = ALERTS_FILE,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Upsert every automation of ``path`` on the server at ``env["PREFECT_API_URL"]``.

    ``env`` defaults to ``os.environ``; its ``SENTIMENT_LORA_ALERT_WEBHOOK`` (the variable the
    file names) gives the URL. Returns the names applied: empty when alerts are off.
    """
    env = os.environ if env is None else env
    alerts = load_alerts(path)
    source = alerts.webhook
    with _api(env):
        found = _webhook_block(source, env.get(source.env, "").strip() or None)
        if found is None:
            echo(f"alerts are off: set {source.env} (or create the Webhook block {source.block})")
            return []
        block, origin = found
        echo(f"alerts: webhook block {source.block} (URL from {origin})")
        with get_client(sync_client=True) as client:
            for alert in alerts.automations:
                automation = build_automation(alert, block._block_document_id)
                existing = client.read_automations_by_name(alert.name)
                for extra in existing[1:]:  # duplicates left by `prefect automation create`
                    client.delete_automation(extra.id)
                if existing:
                    client.update_automation(existing[0].id, automation)
                    echo(f"  updated {alert.name}")
                else:
                    client.create_automation(automation)
                    echo(f"  created {alert.name}")
            wanted = {a.name for a in alerts.automations}
            for stale in client.read_automations():
                if MANAGED_TAG in stale.tags and stale.name not in wanted:
                    client.delete_automation(stale.id)
                    echo(f"  removed {stale.name} (no longer in {Path(path).name})")
    return [a.name for a in alerts.automations]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: apply the file, exit 2 with one line on an invalid file or setup."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--file", default=str(ALERTS_FILE), help="alerts file (default alerts.yaml)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error too")
    args = p.parse_args(argv)
    try:
        apply_alerts(path=args.file)
    except ValueError as exc:
        return report_input_error(exc, debug_requested(args.debug))
    return 0


if __name__ == "__main__":
    sys.exit(main())
