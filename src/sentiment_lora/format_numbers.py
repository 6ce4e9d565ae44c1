"""Numbers as text, the one way: a missing or non-finite number is written ``n/a``, never
``nan`` or ``inf``.

A foundation module (no project imports), so the report, the gate's reasons, the evidence's
sentences and the Prefect artifacts all use it.
"""

import math

MISSING = "n/a"


def finite(value: float | None) -> bool:
    """True for a number that is neither None, NaN nor infinite."""
    return value is not None and math.isfinite(value)


def num(value: float | None, digits: int = 4) -> str:
    """``0.8956`` (``digits`` decimals)."""
    return f"{value:.{digits}f}" if finite(value) else MISSING


def sig(value: float | None, digits: int = 3) -> str:
    """``0.0123``, ``2.6e-40`` (``digits`` significant digits)."""
    return f"{value:.{digits}g}" if finite(value) else MISSING


def pct(value: float | None, digits: int = 1) -> str:
    """``44.6%`` from 0.446."""
    return f"{value:.{digits}%}" if finite(value) else MISSING


def signed(value: float | None, digits: int = 4) -> str:
    """``+0.0650``."""
    return f"{value:+.{digits}f}" if finite(value) else MISSING


def points(value: float | None) -> str:
    """A difference of two proportions in percentage points: ``+6.5``."""
    return f"{value * 100:+.1f}" if finite(value) else MISSING


def pvalue(p: float | None) -> str:
    """Four decimals, or scientific notation below 0.0001 (``2.6e-40``)."""
    if not finite(p):
        return MISSING
    return f"{p:.1e}" if 0 < p < 1e-4 else f"{p:.4f}"


def learning_rate(value: float | None) -> str:
    """``0.001`` / ``2e-05``."""
    return f"{value:g}" if finite(value) else MISSING


def seconds(value: float | None) -> str:
    """``3 min 12 s`` or ``42.0 s``."""
    if not finite(value):
        return MISSING
    minutes, secs = divmod(round(value), 60)
    return f"{minutes} min {secs} s" if minutes else f"{value:.1f} s"
