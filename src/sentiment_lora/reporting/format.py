"""How the report writes numbers, intervals, times and lists as text.

Every function accepts None (and a non-finite float) and writes :data:`MISSING` for it, so a
report never shows ``nan``. The number formats are :mod:`sentiment_lora.format_numbers`'s
(re-exported here), shared with the gate and the Prefect artifacts.
"""

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sentiment_lora.evidence.stats import Interval
from sentiment_lora.format_numbers import (  # noqa: F401 (re-exported: the report's formats)
    MISSING,
    finite,
    learning_rate,
    num,
    pct,
    points,
    pvalue,
    seconds,
    sig,
    signed,
)


def integer(value: int | None) -> str:
    """``47,462``."""
    return MISSING if value is None else f"{value:,}"


def interval(value: Interval | None, digits: int = 4) -> str:
    """``0.8761 – 0.9151``."""
    if value is None or not (finite(value.low) and finite(value.high)):
        return MISSING
    return f"{value.low:.{digits}f} – {value.high:.{digits}f}"


def confidence_label(value: Interval | None) -> str:
    """``95% CI``."""
    return f"{value.confidence:.0%} CI" if value and finite(value.confidence) else "CI"


def plain(value: Any) -> str:
    """A config value as text: lists joined, None as 'default'."""
    if value is None:
        return "default"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else MISSING
    return str(value)


def sentence(text: str | None) -> str:
    """``text`` ending in a full stop ('' for None)."""
    text = (text or "").strip()
    return text if not text or text.endswith((".", "!", "?")) else f"{text}."


def join(parts: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def plural(count: int, word: str) -> str:
    """``1 epoch``, ``3 epochs``."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def count_share(count: int, total: int) -> str:
    """``669 (44.6%)``."""
    return f"{integer(count)} ({pct(count / total if total else None)})"


def timestamp(value: str | None) -> str:
    """An ISO timestamp as '2026-11-26 06:53:41 UTC' (other values as text)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return plain(value)
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ")


def elapsed(start: str | None, end: str | None) -> str | None:
    """The time from ``start`` to ``end`` (ISO timestamps), or None if either is unreadable."""
    try:
        delta = datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
    except (TypeError, ValueError):
        return None
    return seconds(delta.total_seconds())
