"""The one base class of the errors a user can fix: a bad file, option, path or model.

Every entry point (``python flows/full.py``, each ``sentiment-lora`` sub-command) catches
:class:`UserError` once and prints ``error: <message>`` on one line with exit status 2; other
exceptions are bugs and keep their traceback. ``--debug`` (or ``SENTIMENT_LORA_DEBUG=1``)
shows the traceback of a user error too.
"""

import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

DEBUG_ENV = "SENTIMENT_LORA_DEBUG"


class UserError(ValueError):
    """An error in the user's input; the message names the file, line, option or path."""


def user_error(exc: Exception) -> UserError:
    """``exc`` as a :class:`UserError` for the entry point's boundary (itself if it is one)."""
    return exc if isinstance(exc, UserError) else UserError(str(exc))


def validation_message(exc: "ValidationError") -> str:
    """The first error of a pydantic ValidationError on one line: ``field.sub: message``."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def debug_requested(flag: bool = False) -> bool:
    """True with ``--debug`` or ``SENTIMENT_LORA_DEBUG`` set to a true value."""
    return flag or os.environ.get(DEBUG_ENV, "").lower() in {"1", "true", "yes"}


def report_input_error(exc: Exception, debug: bool) -> int:
    """At an entry point, for an error in the input being handled: re-raise it with ``debug``,
    else print ``error: <message>`` on stderr and return exit status 2."""
    if debug:
        raise exc
    print(f"error: {exc}", file=sys.stderr)
    return 2


class HideUserErrorTracebacks(logging.Filter):
    """A log-handler filter: records of a :class:`UserError` keep their message, not the
    traceback (the entry point prints the error once, on one line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UserError):
            record.exc_info, record.exc_text = None, None
        return True
