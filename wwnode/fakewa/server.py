"""HTTP front of the stand-in: the page, its live link, and the control API.

The page is served at ``/`` (as the real one, with ``?post_logout=1`` after
a logout); a browser whose user agent says ``HeadlessChrome`` gets the real
site's "browser not supported" page instead, without the module system.
``/_wa/...`` is the page's own traffic: its script, its live link
(Server-Sent Events) and what it sends.  ``/_sim/...`` is the control API
tests use to play the phone.  All state is in :class:`World`.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast
from urllib.parse import parse_qs, urlsplit

import orjson

from . import assets, calls, chats, contents, groups, media, presence
from .assets import page_modules
from .tls import self_signed_context
from .errors import Ambiguous, Forbidden
from .world import BadRequest, NotFound, Settings, World

log = logging.getLogger("fakewa")

MAX_BODY = 4 * 1024 * 1024
# Seconds ``/_sim/freeze`` waits for the pages it reached to say they hung
# (below the control client's 10 s timeout).
FREEZE_WAIT = 5.0

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    # --------------------------------------------------------- plumbing
    def setup(self) -> None:
        # Pushed events are small; without this, Nagle's algorithm and the
        # peer's delayed ACK can hold one back for 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            # The TLS handshake happens here, on this connection's own
            # thread, so a slow or broken client holds up no other.
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, orjson.dumps(obj))

    def _body(self, max_body: int = MAX_BODY) -> dict:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise BadRequest("a JSON body with Content-Length is required")
        n = int(length)
        if n > max_body:
            raise BadRequest(f"body larger than {max_body} bytes")
        raw = self.rfile.read(n)
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"body is not JSON: {e}") from None
        if not isinstance(obj, dict):
            raise BadRequest("body must be a JSON object")
        return obj

    def _dispatch(self, routes: dict) -> None:
        url = urlsplit(self.path)
        if not url.path.startswith("/_sim/"):  # the pages' own traffic, not the tests'
            self.world.note_request(self.client_address[0], self.command, url.path,
                                    parse_qs(url.query).get("device", [None])[0])
        route = routes.get(url.path)
        if route is None:
            if self.command == "POST" and self.headers.get("Content-Length", "").isdigit():
                self.rfile.read(min(int(self.headers["Content-Length"]), MAX_BODY))
            self._json(404, {"error": f"no such endpoint: {self.command} {url.path}"})
            return
        try:
            route(self, parse_qs(url.query))
        except BadRequest as e:
            self._json(400, {"error": str(e)})
        except NotFound as e:
            self._json(404, {"error": str(e)})
        except Forbidden as e:
            self._json(403, {"error": str(e)})
        except Ambiguous as e:
            self._json(409, {"error": str(e), **e.choices})

    def do_GET(self) -> None:
        self._dispatch(GET_ROUTES)

    def do_POST(self) -> None:
        self._dispatch(POST_ROUTES)

    @property
    def world(self) -> World:
        return self.server.world

    # ------------------------------------------------------------ page
    def page(self, query) -> None:
        if assets.unsupported_browser(self.headers.get("User-Agent", "")):
            self._send(200, assets.unsupported_html(), "text/html; charset=utf-8")
            return
        self._send(200, assets.page_html(self.world.settings, self.world.run_id), "text/html; charset=utf-8")

    def script(self, query) -> None:
        self._send(200, assets.script(), "text/javascript; charset=utf-8")

    def favicon(self, query) -> None:
        # The real site has one; a 404 here would be an error in the
        # console of every page, and clients that watch it would see it.
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def link(self, query) -> None:
        if query.get("run", [""])[0] != self.world.run_id:
            # EventSource gives up on any answer but 200: the page stays
            # unlinked, as a page whose server went away.
            self._json(410, {"error": "this page was served by another run of the stand-in: load it again"})
            return
        device = _one(query, "device")
        tail = _one(query, "tail")
        claims_paired = query.get("paired", ["0"])[0] == "1"
        link = self.world.open_link(device, tail, claims_paired, time.monotonic())
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        keepalive = self.world.settings.keepalive
        try:
            self.wfile.write(b"retry: 500\n\n")
            while not self.server.stopping.is_set():
                wait = self.world.advance(link, time.monotonic())
                timeout = keepalive if wait is None else min(wait, keepalive)
                try:
                    event = link.events.get(timeout=timeout)
                except queue.Empty:  # time to rotate the QR code, or keep alive
                    self.wfile.write(b": keepalive\n\n")
                    continue
                if event["type"] == "drop":
                    break  # the control API cut this link
                self.wfile.write(b"data: " + orjson.dumps(event) + b"\n\n")
                if event["type"] in ("replaced", "logout", "unpaired"):
                    break  # the page closes this link and opens another
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away; what it did not ack is kept
        finally:
            self.world.close_link(link)

    def page_ack(self, query) -> None:
        body = self._body()
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadRequest("ids must be a list of strings")
        self.world.ack(_str(body, "device"), ids)
        self._json(200, {"ok": True})

    def page_send(self, query) -> None:
        body = self._body()
        to = _str(body, "to")
        t = body.get("t")
        if not isinstance(t, int):
            raise BadRequest("t must be an integer")
        if not isinstance(body.get("body"), str):
            raise BadRequest("body must be a string")
        mode, delay = self.world.send_mode(_str(body, "device"))
        if mode == "fail":
            self._json(503, {"error": "sends are failing (control API)"})
            return
        if mode == "slow":
            time.sleep(delay)  # this request's own thread: a crawling server
        media = body.get("media")
        if media is not None and not isinstance(media, dict):
            raise BadRequest("media must be an object")
        record = self.world.record_sent(_str(body, "device"), _str(body, "id"), to, body["body"], t, time.monotonic(),
                                        _sent_extra(body) | contents.sent_content(body), media=media)
        self._json(200, {"ok": True, "id": record["id"]})

    def page_logout(self, query) -> None:
        self.world.page_logout(_str(self._body(), "device"))
        self._json(200, {"ok": True})

    def page_takeover(self, query) -> None:
        self.world.takeover(_str(self._body(), "device"))
        self._json(200, {"ok": True})

    # -------------------------------------------------------- control
    def sim_health(self, query) -> None:
        self._json(200, {"ok": True})

    def sim_qr(self, query) -> None:
        self._json(200, {"pending": self.world.pending_qr()})

    def sim_scan(self, query) -> None:
        body = self._body()
        wid = self.world.scan(body.get("qr"), body.get("phone"), time.monotonic(),
                              pushname=body.get("pushname"), platform=body.get("platform"))
        self._json(200, {"wid": wid})

    def sim_deliver(self, query) -> None:
        body = self._body()
        msg_id = self.world.deliver(body.get("to"), body.get("from"), body.get("body"), group=body.get("group"),
                                    by_lid=body.get("lid", False))
        self._json(200, {"id": msg_id})

    def sim_sent(self, query) -> None:
        self._json(200, {"messages": self.world.sent_by(_one(query, "from"), time.monotonic())})

    def sim_receipts(self, query) -> None:
        body = self._body()
        self._json(200, {"ack": self.world.receipt(body.get("message_id"), body.get("ack"))})

    def sim_logout(self, query) -> None:
        self.world.logout(self._body().get("phone"))
        self._json(200, {"ok": True})

    def sim_conflict(self, query) -> None:
        self.world.conflict(self._body().get("phone"))
        self._json(200, {"ok": True})

    def sim_freeze(self, query) -> None:
        # Answered once every page it reached says it is hung (or after
        # FREEZE_WAIT): a caller that then asks the page for something
        # knows the page will not do it.
        links = self.world.freeze(self._body().get("phone"))
        deadline = time.monotonic() + FREEZE_WAIT
        frozen = sum(link.frozen.wait(max(0.0, deadline - time.monotonic())) for link in links)
        self._json(200, {"ok": True, "pages": len(links), "frozen": frozen})

    def page_frozen(self, query) -> None:
        self.world.page_frozen(_str(self._body(), "device"))
        self._json(200, {"ok": True})

    def sim_cut(self, query) -> None:
        self.world.cut_links(self._body().get("phone"))
        self._json(200, {"ok": True})

    def sim_sends(self, query) -> None:
        body = self._body()
        self.world.set_send_mode(body.get("phone"), body.get("mode"), body.get("delay", 0))
        self._json(200, {"ok": True})


    # ------------------------------------ beyond text (messaging.py)
    def page_react(self, query) -> None:
        body = self._body()
        self.world.record_reaction(_str(body, "device"), body.get("id"), body.get("chat"), body.get("reaction"))
        self._json(200, {"ok": True})

    def page_seen(self, query) -> None:
        body = self._body()
        self.world.mark_seen(_str(body, "device"), body.get("chat"))
        self._json(200, {"ok": True})

    def page_exists(self, query) -> None:
        body = self._body()
        self._json(200, self.world.query_exists(_str(body, "device"), body.get("wid")) or {"wid": None})

    def page_pair_code(self, query) -> None:
        body = self._body()
        self._json(200, {"code": self.world.request_pairing_code(_str(body, "device"), body.get("phone"))})

    def sim_pair(self, query) -> None:
        body = self._body()
        self._json(200, {"wid": self.world.pair(body.get("phone"), body.get("code"), time.monotonic())})

    def sim_react(self, query) -> None:
        body = self._body()
        self.world.react(body.get("to"), body.get("from"), body.get("message_id"), body.get("reaction"),
                         by_lid=body.get("lid", False))
        self._json(200, {"ok": True})

    def sim_reactions(self, query) -> None:
        self._json(200, {"reactions": self.world.reactions_by(_one(query, "from"))})

    def sim_seen(self, query) -> None:
        self._json(200, {"chats": self.world.seen_by(_one(query, "phone"))})

    def sim_numbers(self, query) -> None:
        body = self._body()
        self.world.set_number(body.get("phone"), body.get("registered"), body.get("wid"))
        self._json(200, {"ok": True})

    # ---------------------------------- LIDs and own messages (lidworld.py)
    def sim_lids(self, query) -> None:
        body = self._body()
        self._json(200, {"lid": self.world.lid_of(body.get("phone"), body.get("lid"))})

    def sim_contacts(self, query) -> None:
        body = self._body()
        if body.get("name") is not None:  # the name the account saved the number under (contents.py)
            self.world.name_contact(body.get("phone"), body.get("contact"), body.get("name"))
        self.world.add_contact(body.get("phone"), body.get("contact"))
        self._json(200, {"ok": True})

    def sim_groups(self, query) -> None:
        body = self._body()
        self.world.set_group_addressing(body.get("group"), body.get("addressing"))
        self._json(200, {"ok": True})

    def sim_own(self, query) -> None:
        body = self._body()
        self._json(200, {"id": self.world.write_own(body.get("phone"), body.get("chat"), body.get("body"))})

    # ------------------------------------ edits and deletions (edits.py)
    def page_edit(self, query) -> None:
        body = self._body()
        self._json(200, {"ok": True, **self.world.record_edit(_str(body, "device"), body.get("id"), body.get("body"))})

    def page_revoke(self, query) -> None:
        body = self._body()
        self._json(200, {"ok": True, **self.world.record_revoke(_str(body, "device"), body.get("id"))})

    def sim_edit(self, query) -> None:
        body = self._body()
        self.world.phone_edits(body.get("to"), body.get("message_id"), body.get("body"))
        self._json(200, {"ok": True})

    def sim_revoke(self, query) -> None:
        body = self._body()
        self.world.phone_revokes(body.get("to"), body.get("message_id"))
        self._json(200, {"ok": True})

    def sim_peers(self, query) -> None:
        self._json(200, self.world.peers())

    def sim_received(self, query) -> None:
        self._json(200, {"messages": self.world.received_by(_one(query, "phone"), time.monotonic())})


def _sent_extra(body: dict) -> dict:
    """What a sent message carries besides its text, as the page posts it."""
    extra: dict[str, object] = {}
    quoted = body.get("quoted_id")
    if quoted is not None:
        if not isinstance(quoted, str) or not quoted:
            raise BadRequest("quoted_id must be a non-empty string")
        extra["quoted_id"] = quoted
    mentions = body.get("mentions")
    if mentions is not None:
        if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
            raise BadRequest("mentions must be a list of strings")
        extra["mentions"] = mentions
    sender = body.get("from")
    if sender is not None:
        # Who the page wrote as: the account's number, or its LID.
        if not isinstance(sender, str) or not sender:
            raise BadRequest("from must be a non-empty string")
        extra["from"] = sender
    return extra


GET_ROUTES = {
    "/": _Handler.page,
    "/_wa/page.js": _Handler.script,
    "/favicon.ico": _Handler.favicon,
    "/_wa/link": _Handler.link,
    "/_sim/health": _Handler.sim_health,
    "/_sim/qr": _Handler.sim_qr,
    "/_sim/messages": _Handler.sim_sent,
    "/_sim/reactions": _Handler.sim_reactions,
    "/_sim/seen": _Handler.sim_seen,
    "/_sim/received": _Handler.sim_received,
    "/_sim/peers": _Handler.sim_peers,
    **media.GET_ROUTES,
    **calls.GET_ROUTES,
    **presence.GET_ROUTES,
    **chats.GET_ROUTES,
    **groups.GET_ROUTES,
}
POST_ROUTES = {
    "/_wa/ack": _Handler.page_ack,
    "/_wa/frozen": _Handler.page_frozen,
    "/_wa/send": _Handler.page_send,
    "/_wa/logout": _Handler.page_logout,
    "/_wa/takeover": _Handler.page_takeover,
    "/_sim/scan": _Handler.sim_scan,
    "/_sim/messages": _Handler.sim_deliver,
    "/_sim/logout": _Handler.sim_logout,
    "/_sim/conflict": _Handler.sim_conflict,
    "/_sim/freeze": _Handler.sim_freeze,
    "/_sim/cut": _Handler.sim_cut,
    "/_sim/sends": _Handler.sim_sends,
    "/_sim/receipts": _Handler.sim_receipts,
    "/_wa/react": _Handler.page_react,
    "/_wa/seen": _Handler.page_seen,
    "/_wa/exists": _Handler.page_exists,
    "/_wa/pair-code": _Handler.page_pair_code,
    "/_sim/pair": _Handler.sim_pair,
    "/_sim/reactions": _Handler.sim_react,
    "/_sim/numbers": _Handler.sim_numbers,
    "/_sim/lids": _Handler.sim_lids,
    "/_sim/contacts": _Handler.sim_contacts,
    "/_sim/groups": _Handler.sim_groups,
    "/_sim/own": _Handler.sim_own,
    "/_wa/edit": _Handler.page_edit,
    "/_wa/revoke": _Handler.page_revoke,
    "/_sim/edit": _Handler.sim_edit,
    "/_sim/revoke": _Handler.sim_revoke,
    **media.POST_ROUTES,
    **contents.POST_ROUTES,
    **calls.POST_ROUTES,
    **presence.POST_ROUTES,
    **chats.POST_ROUTES,
    **groups.POST_ROUTES,
}


def _one(query: dict, name: str) -> str:
    values = query.get(name)
    if not values or not values[0]:
        raise BadRequest(f"query parameter {name!r} is required")
    return values[0]


def _str(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} must be a non-empty string")
    return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, world: World, tls: ssl.SSLContext | None):
        super().__init__(addr, _Handler)
        self.world = world
        self.tls = tls
        self.stopping = threading.Event()

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address) -> None:
        # A client that fails the TLS handshake (or hangs up during it) is
        # its own problem, not the server's: no traceback on stderr.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, TimeoutError, ConnectionError)):
            log.debug("%s: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


class FakeWA:
    """The stand-in, runnable in a thread (tests) or as ``fakewa`` (a process).

    >>> with FakeWA(settings=Settings(qr_first=2, qr_next=1)) as wa:
    ...     wa.url        # open this instead of https://web.whatsapp.com/

    With ``tls=True`` it serves HTTPS with a self-signed certificate for
    ``web.whatsapp.com`` (see :mod:`wwnode.fakewa.tls`).  Given the
    ``world`` of another one, it is a second front (say HTTPS beside HTTP)
    on the same phones, devices and messages.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, settings: Settings | None = None, tls: bool = False,
                 world: World | None = None):
        if world is not None and settings is not None:
            raise ValueError("a second front shares the world's settings; give one or the other")
        self.world = world or World(settings)
        unknown = set(self.world.settings.drop_modules) - set(page_modules())
        if unknown:
            raise ValueError(f"the page has no module {', '.join(sorted(unknown))}")
        self.tls = tls
        self._server = _Server((host, port), self.world, self_signed_context() if tls else None)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = cast(str, self._server.server_address[0])  # an IP socket's address is (host, port, ...)
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def start(self) -> "FakeWA":
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fakewa", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeWA":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
