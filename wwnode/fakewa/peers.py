"""Where the stand-in's traffic came from: the address of every request
(the page, its script, its live link, what it posts), in order, and which
device each live link was for, as a server sees its clients.  A test whose
browsers go through proxies that connect out from loopback addresses of
their own (``127.0.0.x``) reads here which of them each page and link came
through, and that nothing came another way.  ``GET /_sim/peers``.

Mixed into :class:`~wwnode.fakewa.world.World`: it uses the world's lock
and devices."""

from __future__ import annotations

from collections import deque
from .worldbase import WorldBase

MAX_REQUESTS = 20_000  # the newest kept


class PeerWorld(WorldBase):
    def _init_peers(self) -> None:
        self._requests: deque[dict] = deque(maxlen=MAX_REQUESTS)

    def note_request(self, address: str, method: str, path: str, device: str | None) -> None:
        entry = {"address": address, "method": method, "path": path}
        if device:
            entry["device"] = device
        with self._lock:
            self._requests.append(entry)

    def peers(self) -> dict:
        """``requests``: every request, in order; ``devices``: device id ->
        the phone it is linked to (None while it is not)."""
        with self._lock:
            return {"requests": [dict(r) for r in self._requests],
                    "devices": {d.id: d.phone for d in self._devices.values()}}
