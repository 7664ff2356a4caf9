"""Counts of what happened on this node since it started, for operators and
tests to read (they are written with the heartbeat to ``nodes:{node}``)
rather than to find in the log.  A name is a stable word, like a reason."""

from __future__ import annotations

from collections import Counter


class Counters:
    def __init__(self):
        self._counts: Counter[str] = Counter()

    def bump(self, name: str, n: int = 1) -> None:
        self._counts[name] += n

    def get(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)
