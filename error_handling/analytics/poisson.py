"""The upper tail of a Poisson law, in log space so that large rates neither underflow nor overflow."""

from __future__ import annotations

import math

#: Terms of the tail summed at most (the terms past the mode fall fast; this is never reached in practice).
MAX_TERMS = 100_000


def poisson_tail(count: float, rate: float) -> float:
    """``P(X >= count)`` for ``X ~ Poisson(rate)`` (a fractional ``count`` is rounded up).

    At or below the rate the answer is at least about one half, and 1.0 is returned: no spike is that
    likely. Raises nothing: a rate at or below 0 makes any positive count impossible (0.0).
    """
    first = math.ceil(count)
    if first <= 0:
        return 1.0
    if rate <= 0:
        return 0.0
    if first <= rate:
        return 1.0
    log_rate = math.log(rate)
    total = 0.0
    for k in range(first, first + MAX_TERMS):
        term = math.exp(k * log_rate - rate - math.lgamma(k + 1))
        total += term
        if term <= total * 1e-16:
            break
    return min(total, 1.0)
