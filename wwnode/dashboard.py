"""``wwnode dashboard``: the fleet in a web page, live.

It is a client like any other: it reads Redis (node heartbeats, session
states, QR codes) and follows ``wa.events`` through a private queue, and its
buttons publish commands to the command queues, checked first as the node
would check them (``client.py``).  It never reads a node's internals.

The page (``dashboard.html``) is a console: counts by state, filter, sort
and pages for the fleet; a page per session (QR or pairing code, send with
a file, settings, chats through ``query``); each command published with an
id of the dashboard's, which the page follows to show the node's answer
where the action was made; events as ``wwnode events`` prints them (each
event is handed on with that line, ``_line``).

One thread (:class:`FleetWatch`) talks to RabbitMQ and Redis with the same
blocking clients as the command line: every second it reads the fleet, and
in between it hands on the events as they come.  The web side is aiohttp
(asyncio); the thread hands what it found over with
``loop.call_soon_threadsafe``, and each open page gets it by server-sent
events (``/stream``): the fleet when it changed, each event as it comes.  A
session showing a QR code is shown with that code as a PNG image (``segno``,
as ``wwnode qr --png`` draws it), replaced when the code rotates.

Safe by default:

- it binds 127.0.0.1; bound to any other address it needs
  ``DASHBOARD_TOKEN`` and refuses to start without one.  With a token every
  request must carry it (``?token=`` once, which sets a cookie, or the
  cookie, or ``Authorization: Bearer``);
- without a token, only requests whose ``Host`` names a loopback address
  are served (a web page elsewhere cannot reach it through a DNS name that
  points to 127.0.0.1);
- a command (POST) must be JSON and, when the browser says where it comes
  from (``Origin``), come from the dashboard's own page: another site's
  page cannot make a visitor's browser create or destroy sessions;
- passwords are never shown: the servers' URLs are shown masked, and
  nothing else it shows holds one.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import threading
import time
import uuid
from collections import deque
from importlib import resources
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import orjson
import pika.exceptions
import redis
from aiohttp import web

from .client import Broker, Rejected, Unreachable, checked, open_redis
from .config import Config, read_dotenv, redact_url
from .eventlines import describe
from .keys import PAIRING_CODE, QR, SETTINGS, instance_key
from .qrterm import make as make_qr
from .sessionsettings import from_stored
from .status import collect

log = logging.getLogger(__name__)

READ_EVERY = 1.0  # seconds between two readings of the fleet in Redis
TAIL = 200  # events a page gets when it opens
RETRY = 2.0  # seconds before connecting again after a server went away
COOKIE = "wwnode_dashboard"
MAX_BODY = 24 * 1024 * 1024  # a command with a file to send (base64) fits; the broker's own limit is larger
HEARTBEAT_FIELDS = ("sessions", "accepting", "cpu", "mem", "max_sessions", "router", "host", "ts", "disk_ok",
                    "metrics_addr", "redis_up", "outbox", "crashes")


class RefusedToStart(Exception):
    """A setting that would make the dashboard unsafe or unusable."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def hostname(host: str) -> str:
    """``127.0.0.1:8080``, ``[::1]:8080``, ``localhost`` -> the name alone."""
    return (urlsplit("//" + host).hostname or "").lower()


def dashboard_token(environ=None) -> str:
    """``DASHBOARD_TOKEN``, from the environment or ``.env`` (the
    environment wins), as the node's settings."""
    env = dict(read_dotenv(Path(".env")))
    env.update(os.environ if environ is None else environ)
    return env.get("DASHBOARD_TOKEN", "")


def qr_png_uri(qr: str) -> str:
    # Shown at its own size: whole pixels a module, which a camera reads
    # best (scaled by the browser, modules come out of uneven widths).
    return make_qr(qr).png_data_uri(scale=5, border=4)


def fleet_view(r: redis.Redis) -> dict:
    """What the page shows of the fleet: each node's load and admission,
    each session's state, node, since, own number, and its QR image while
    it shows one."""
    data = collect(r)
    nodes = {name: {f: hb.get(f) for f in HEARTBEAT_FIELDS if f in hb} for name, hb in data["nodes"].items()}
    sessions = {}
    for key, st in data["sessions"].items():
        view = {"state": st.get("state", "?"), "node": st.get("node", ""), "since": int(st.get("since") or 0),
                "me": st.get("me") or "", "proxy": st.get("proxy", "")}
        if view["state"] == "qr":
            qr = cast("str | None", r.get(instance_key(key, QR)))  # the client decodes
            if qr:
                view["qr"] = qr
                view["qr_png"] = qr_png_uri(qr)
        sessions[key] = view
    return {"nodes": nodes, "sessions": sessions}


def with_line(event: dict) -> dict:
    """The event, and the line ``wwnode events`` prints for it (``_line``):
    the page shows that, so both read the same."""
    return {**event, "_line": describe(event)}


def session_detail(r: redis.Redis, key: str) -> dict:
    """What a session's page shows beyond the fleet's row: its settings
    (the proxy's password masked) and the pairing code it shows now."""
    detail: dict = {"key": key, "settings": None, "pairing_code": r.get(instance_key(key, PAIRING_CODE))}
    stored = r.get(instance_key(key, SETTINGS))
    if stored:
        try:
            detail["settings"] = from_stored(orjson.loads(stored)).public()
        except ValueError:
            detail["settings_error"] = "the stored settings cannot be read"
    return detail


class FleetWatch(threading.Thread):
    """Reads the fleet from Redis and follows the events; hands each to
    ``push(kind, data)``: ``fleet`` (when it changed), ``event``, and
    ``problem`` (a server cannot be reached; ``None`` once both answer)."""

    def __init__(self, cfg: Config, push):
        super().__init__(name="fleet-watch", daemon=True)
        self.cfg = cfg
        self.push = push
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self._watch()
            except (Unreachable, pika.exceptions.AMQPError, redis.exceptions.RedisError, OSError) as e:
                self.push("problem", {"text": str(e) if isinstance(e, Unreachable) else f"{type(e).__name__}: {e}"})
                self.stopped.wait(RETRY)

    def _watch(self) -> None:
        r = open_redis(self.cfg.redis_url)
        broker = Broker(self.cfg.rabbit_mq_url)
        try:
            broker.follow(("#",))
            self.push("problem", None)
            last, next_read = None, 0.0
            while not self.stopped.is_set():
                now = time.monotonic()
                if now >= next_read:
                    next_read = now + READ_EVERY
                    fleet = fleet_view(r)
                    if fleet != last:
                        last = fleet
                        self.push("fleet", fleet)
                broker.conn.process_data_events(time_limit=max(0.05, next_read - time.monotonic()))
                while broker.events:
                    self.push("event", with_line(broker.events.popleft()))
        finally:
            r.close()
            try:
                broker.close()
            except pika.exceptions.AMQPError:
                pass  # already gone


class Hub:
    """The latest fleet, the last events, and the open pages (asyncio side)."""

    def __init__(self):
        self.fleet: dict = {"nodes": {}, "sessions": {}}
        self.events: deque[dict] = deque(maxlen=TAIL)
        self.problem: dict | None = None
        self.pages: set[asyncio.Queue] = set()

    def publish(self, kind: str, data) -> None:
        if kind == "fleet":
            self.fleet = data
        elif kind == "event":
            self.events.append(data)
        elif kind == "problem":
            self.problem = data
        for page in self.pages:
            page.put_nowait((kind, data))


def _sse(kind: str, data) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def make_app(cfg: Config, token: str = "", bound_host: str = "127.0.0.1") -> web.Application:
    hub = Hub()
    allowed_hosts = {"localhost", "127.0.0.1", "::1", hostname(bound_host) or bound_host}

    @web.middleware
    async def guard(request: web.Request, handler):
        if token:
            given = (request.query.get("token") or request.cookies.get(COOKIE)
                     or request.headers.get("Authorization", "").removeprefix("Bearer "))
            if not given or not hmac.compare_digest(given.encode(), token.encode()):
                return web.Response(status=401, text="a token is needed (DASHBOARD_TOKEN): open /?token=...\n")
            if "token" in request.query:  # once: then the cookie, and the token off the address bar
                response = web.Response(status=302, headers={"Location": _same_site(request.rel_url.with_query(
                    [(k, v) for k, v in request.query.items() if k != "token"]))})
                response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
                return response
        elif hostname(request.host) not in allowed_hosts:
            return web.Response(status=403, text="this dashboard answers to a loopback host name only\n")
        if request.method == "POST":
            if request.content_type != "application/json":
                return web.json_response({"error": "a command is a JSON body"}, status=415)
            origin = request.headers.get("Origin")
            if origin and urlsplit(origin).netloc != request.host:
                return web.json_response({"error": "not from this dashboard's page"}, status=403)
        return await handler(request)

    async def index(request: web.Request) -> web.Response:
        html = resources.files("wwnode").joinpath("dashboard.html").read_text()
        where = {"rabbitmq": redact_url(cfg.rabbit_mq_url), "redis": redact_url(cfg.redis_url)}
        return web.Response(text=html.replace("/*WHERE*/null", orjson.dumps(where).decode()),
                            content_type="text/html", headers={"Cache-Control": "no-store"})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        page: asyncio.Queue = asyncio.Queue()
        hub.pages.add(page)
        try:
            await response.write(_sse("problem", hub.problem))
            await response.write(_sse("fleet", hub.fleet))
            for event in list(hub.events):
                await response.write(_sse("event", event))
            while True:
                try:
                    kind, data = await asyncio.wait_for(page.get(), timeout=15)
                except asyncio.TimeoutError:
                    await response.write(b": still here\n\n")  # keeps proxies from closing it
                    continue
                if kind == "bye":
                    break
                await response.write(_sse(kind, data))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            hub.pages.discard(page)
        return response

    async def command(request: web.Request, queue: str, body: dict) -> web.Response:
        """Publish a command with an id of its own, which the page follows:
        the node's answer (``command_failed`` included) carries it."""
        body = {**body, "id": uuid.uuid4().hex}

        def publish() -> None:
            with Broker(cfg.rabbit_mq_url) as broker:
                broker.publish(queue, body)

        try:
            await asyncio.get_running_loop().run_in_executor(None, publish)
        except Rejected as e:
            return web.json_response({"error": f"{e.detail} ({e.reason})"}, status=400)
        except (Unreachable, pika.exceptions.AMQPError) as e:
            return web.json_response({"error": f"RabbitMQ: {e}"}, status=503)
        return web.json_response({"published": queue, "id": body["id"]})

    async def body_of(request: web.Request) -> dict:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="not a JSON object")
        return body

    def present(b: dict, *fields: str) -> dict:
        """The fields the page gave (the node's parser checks them)."""
        return {f: b[f] for f in fields if f in b and b[f] not in (None, "")}

    async def create(request: web.Request) -> web.Response:
        b = await body_of(request)
        return await command(request, "create_instance", {"key": b.get("key"), **present(b, "pair_with_phone")})

    async def destroy(request: web.Request) -> web.Response:
        b = await body_of(request)
        body = {"key": b.get("key")}
        if b.get("logout") is True:
            body["logout"] = True
        return await command(request, "destroy_instance", body)

    async def send(request: web.Request) -> web.Response:
        b = await body_of(request)
        return await command(request, "send_message", {"key": b.get("key"), "chat_id": b.get("chat_id"),
                                                       "message": b.get("message"), **present(b, "media")})

    async def query(request: web.Request) -> web.Response:
        b = await body_of(request)
        return await command(request, "query", {"key": b.get("key"), "what": b.get("what"),
                                                **present(b, "chat_id", "limit", "before")})

    async def settings(request: web.Request) -> web.Response:
        b = await body_of(request)
        return await command(request, "update_settings", {"key": b.get("key"), "settings": b.get("settings")})

    async def session(request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        try:
            checked("create_instance", {"key": key})
        except Rejected as e:
            return web.json_response({"error": f"{e.detail} ({e.reason})"}, status=400)

        def read() -> dict:
            r = open_redis(cfg.redis_url)
            try:
                return session_detail(r, key)
            finally:
                r.close()

        try:
            return web.json_response(await asyncio.get_running_loop().run_in_executor(None, read))
        except (Unreachable, redis.exceptions.RedisError) as e:
            return web.json_response({"error": f"Redis: {e}"}, status=503)

    async def start_watch(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        watch = FleetWatch(cfg, lambda kind, data: loop.call_soon_threadsafe(hub.publish, kind, data))
        app["watch"] = watch
        watch.start()

    async def stop_watch(app: web.Application) -> None:
        app["watch"].stopped.set()
        for page in hub.pages:  # each open stream ends
            page.put_nowait(("bye", None))

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app["hub"] = hub
    app.router.add_get("/", index)
    app.router.add_get("/stream", stream)
    app.router.add_post("/api/create", create)
    app.router.add_post("/api/destroy", destroy)
    app.router.add_post("/api/send", send)
    app.router.add_post("/api/query", query)
    app.router.add_post("/api/settings", settings)
    app.router.add_get("/api/session", session)
    app.on_startup.append(start_watch)
    app.on_shutdown.append(stop_watch)
    return app


def _same_site(url) -> str:
    """Where the token's redirect may send the browser: a path of this
    dashboard.  A request path such as ``//evil.example/x`` would otherwise
    make a ``Location`` another site reads as its own address."""
    path = url.path
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return str(url)


def check_bind(host: str, token: str) -> None:
    if not is_loopback(host) and not token:
        raise RefusedToStart(f"bound to {host}, the dashboard would let anyone who reaches it create, destroy "
                             "and send: set DASHBOARD_TOKEN (a long random string) or bind 127.0.0.1")
    if token and len(token) < 16:
        raise RefusedToStart("DASHBOARD_TOKEN must be at least 16 characters")


def serve(cfg: Config, host: str, port: int) -> None:
    token = dashboard_token()
    check_bind(host, token)
    shown = f"[{host}]" if ":" in host else host

    def listening(_: str) -> None:  # called once the address is bound
        print(f"wwnode dashboard on http://{shown}:{port}/{' (token needed: DASHBOARD_TOKEN)' if token else ''}; "
              "Ctrl-C to stop", flush=True)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # a lost broker is said once, on the page
    web.run_app(make_app(cfg, token, host), host=host, port=port, print=listening, handle_signals=True,
                shutdown_timeout=2)
