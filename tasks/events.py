"""Emit the project's events through Prefect, from inside a flow run (the contract, names,
resources and payloads, lives in ``sentiment_lora.operations.events``; alerts.yaml matches it)."""

from prefect.events import emit_event

from sentiment_lora.operations.events import Event


def emit(event: Event) -> None:
    """Send ``event`` with Prefect's client (related to the current flow run)."""
    emit_event(event=event.name, resource=event.resource, payload=event.payload_json())
