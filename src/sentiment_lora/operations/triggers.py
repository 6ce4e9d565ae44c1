"""What started a run: the command line, a person in the UI, the schedule or an event trigger."""

from typing import Literal

Trigger = Literal["cli", "ui", "schedule", "trigger"]


def classify_trigger(
    *, deployment_id: object | None, auto_scheduled: bool, created_by_type: str | None
) -> Trigger:
    """The trigger of a flow run from what Prefect records about it.

    No deployment: ``python flows/full.py`` (``cli``). A run the scheduler created:
    ``schedule``. A run an automation created (an event trigger such as new data): ``trigger``.
    Any other deployment run was started by hand, from the UI or ``prefect deployment run``
    (``ui``).
    """
    if deployment_id is None:
        return "cli"
    if auto_scheduled:
        return "schedule"
    if (created_by_type or "").upper() == "AUTOMATION":
        return "trigger"
    return "ui"
