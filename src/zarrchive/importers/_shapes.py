"""Shape arithmetic shared by the importers. Pure: no I/O, imports nothing of zarrchive."""

from __future__ import annotations

__all__ = ["largest_divisor"]


def largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that is at most ``limit`` (trial division to sqrt(n))."""
    best = 1 if limit >= 1 else 0
    i = 1
    while i * i <= n:
        if n % i == 0:
            for d in (i, n // i):
                if best < d <= limit:
                    best = d
        i += 1
    return best
