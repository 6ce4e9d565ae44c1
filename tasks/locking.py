"""One run at a time through the champion gate and promotion.

The registry's file lock (``sentiment_lora.operations.locks``) serialises the runs of one
machine; with a Prefect server, the global concurrency limit :data:`REGISTRY_LIMIT` (created
by ``make deploy``) serialises runs on every machine that reaches the server as well. A limit
that does not exist is never skipped silently: the run logs that only the file lock applies.
"""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_run_logger

from sentiment_lora.operations.locks import REGISTRY_LIMIT, registry_lock


def _limit_exists(name: str) -> bool:
    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return False
    return True


@contextmanager
def registry_guard(registry_dir: str) -> Iterator[None]:
    """Hold the Prefect limit (when it exists) and the registry's file lock."""
    logger = get_run_logger()
    with ExitStack() as stack:
        if _limit_exists(REGISTRY_LIMIT):
            stack.enter_context(concurrency(REGISTRY_LIMIT, occupy=1, strict=True))
            logger.info("registry: holding the global concurrency limit %s", REGISTRY_LIMIT)
        else:
            logger.info("registry: no limit %s on this server; file lock only", REGISTRY_LIMIT)
        stack.enter_context(registry_lock(registry_dir))
        yield
