"""Process defaults for Prefect, applied before Prefect is imported (import this first).

Keeps Prefect's home, database and cached results inside the project, turns telemetry off,
and reuses a local Prefect server on 127.0.0.1:4200 when one is running (saving the 10-20 s an
ephemeral server costs each process). Values already set in the environment win.
"""

import logging
import os
import urllib.request
import warnings
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_API = "http://127.0.0.1:4200/api"

_DEFAULTS = {
    "PREFECT_HOME": str(PROJECT_ROOT / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "sentiment_lora",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",  # no per-load weight reports in the run logs
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def _local_server_up(url: str = LOCAL_API) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=0.5) as response:
            return response.status == 200
    except OSError:
        return False


def apply_defaults() -> None:
    """Set the defaults above where unset; point at a running local server if there is one."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    if "PREFECT_API_URL" not in os.environ and _local_server_up():
        os.environ["PREFECT_API_URL"] = LOCAL_API
    # Prefect copies its handlers to extra loggers but not a level: without this the
    # per-config progress lines (INFO) would be dropped by the root logger's WARNING level.
    logging.getLogger("sentiment_lora").setLevel(logging.INFO)


def hide_user_error_tracebacks() -> None:
    """The console keeps a user error's message, not its traceback (the run's log keeps both
    and the entry point prints the error once, on one line)."""
    from sentiment_lora.errors import HideUserErrorTracebacks

    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        for handler in logger.handlers:  # the console handler is the root logger's
            handler.addFilter(HideUserErrorTracebacks())


apply_defaults()
warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
