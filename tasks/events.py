"""Prefect events the pipeline emits for alerts (see alerts.yaml): a champion promoted, data
drifted. Their names, resources and payloads are the contract the automations match."""

from prefect.events import emit_event

from sentiment_lora.evidence.data_diff import DataDiff
from sentiment_lora.operations.events import registry_resource
from sentiment_lora.operations.registry import VersionRecord

CHAMPION_PROMOTED = "sentiment-lora.champion.promoted"
DATA_DRIFT = "sentiment-lora.data.drift"


def emit_champion_changed(record: VersionRecord, registry_dir: str, *, event: str) -> None:
    """A version became champion (``event``: promoted or rolled back)."""
    emit_event(
        event=event,
        resource=registry_resource(registry_dir),
        payload={
            "run_id": record.run_id,
            "version": record.version,
            "previous_version": record.became_champion.previous_version,
            "config_name": record.config_name,
            "test_accuracy": record.test_accuracy,
            "test_f1_macro": record.test_f1_macro,
            "reason": record.became_champion.reason,
        },
    )


def emit_data_drift(diff: DataDiff, *, run_id: str, data_dir: str | None) -> None:
    """The run's data drifted significantly from the champion's."""
    emit_event(
        event=DATA_DRIFT,
        resource={
            "prefect.resource.id": "sentiment-lora.data",
            "prefect.resource.name": data_dir or "glue/sst2",
        },
        payload={
            "run_id": run_id,
            "tests": [t.model_dump(mode="json") for t in diff.tests if t.significant],
            "summary": diff.summary,
        },
    )
