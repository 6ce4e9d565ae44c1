"""How the report writes numbers, intervals, times and lists as text.

Every function accepts None (and a non-finite float) and writes :data:`MISSING` for it, so a
report never shows ``nan``.
"""

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sentiment_lora.evidence.stats import Interval

MISSING = "n/a"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def num(value: float | None, digits: int = 4) -> str:
    """``0.8956`` (``digits`` decimals)."""
    return f"{value:.{digits}f}" if _finite(value) else MISSING


def integer(value: int | None) -> str:
    """``47,462``."""
    return MISSING if value is None else f"{value:,}"


def pct(value: float | None, digits: int = 1) -> str:
    """``44.6%`` from 0.446."""
    return f"{value:.{digits}%}" if _finite(value) else MISSING


def signed(value: float | None, digits: int = 4) -> str:
    """``+0.0650``."""
    return f"{value:+.{digits}f}" if _finite(value) else MISSING


def points(value: float | None) -> str:
    """A difference of two proportions in percentage points: ``+6.5``."""
    return f"{value * 100:+.1f}" if _finite(value) else MISSING


def pvalue(p: float | None) -> str:
    """Four decimals, or scientific notation below 0.0001 (``2.6e-40``)."""
    if not _finite(p):
        return MISSING
    return f"{p:.1e}" if 0 < p < 1e-4 else f"{p:.4f}"


def interval(value: Interval | None, digits: int = 4) -> str:
    """``0.8761 – 0.9151``."""
    if value is None or not (_finite(value.low) and _finite(value.high)):
        return MISSING
    return f"{value.low:.{digits}f} – {value.high:.{digits}f}"


def confidence_label(value: Interval | None) -> str:
    """``95% CI``."""
    return f"{value.confidence:.0%} CI" if value and _finite(value.confidence) else "CI"


def learning_rate(value: float | None) -> str:
    """``0.001`` / ``2e-05``."""
    return f"{value:g}" if _finite(value) else MISSING


def seconds(value: float | None) -> str:
    """``3 min 12 s`` or ``42.0 s``."""
    if not _finite(value):
        return MISSING
    minutes, secs = divmod(round(value), 60)
    return f"{minutes} min {secs} s" if minutes else f"{value:.1f} s"


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
