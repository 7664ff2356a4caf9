"""The page as the server sends it: its HTML with the settings in it, its
one script, and the real site's page for browsers it does not support."""

from __future__ import annotations

import functools
import re
from importlib import resources

import orjson

from .settings import Settings

# The page's parts, joined into the one script it loads.
SCRIPT_PARTS = ("page_base.js", "page_weight.js", "page_messaging.js", "page_lids.js", "page_edits.js", "page_media.js",
                "page_content.js", "page_calls.js", "page_presence.js", "page_history.js", "page_groups.js",
                "page.js")


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath(name).read_bytes()


@functools.cache
def script() -> bytes:
    parts = b"\n".join(_asset(name) for name in SCRIPT_PARTS)
    return b"(function () {\n'use strict';\n" + parts + b"\n})();\n"


def page_html(settings: Settings, run_id: str) -> bytes:
    # Settings reach the page as data in a JSON block, never as script.
    weight = {"heapMb": settings.weight_heap_mb, "domNodes": settings.weight_dom_nodes,
              "chats": settings.weight_chats, "messages": settings.weight_messages}
    config = {"dropModules": list(settings.drop_modules), "editWindow": settings.edit_window,
              "revokeWindow": settings.revoke_window, "run": run_id}
    if any(weight.values()):
        config["weight"] = weight
    data = orjson.dumps(config).replace(b"<", b"\\u003c")
    return _asset("page.html").replace(b"{{config}}", data)


def unsupported_html() -> bytes:
    return _asset("unsupported.html")


@functools.cache
def page_modules() -> tuple[str, ...]:
    """The modules the page defines (``define('Name', ...)`` in its parts)."""
    source = "\n".join(_asset(name).decode() for name in SCRIPT_PARTS)
    return tuple(re.findall(r"^ *define\('([A-Za-z0-9_]+)'", source, re.MULTILINE))


def unsupported_browser(user_agent: str) -> bool:
    # The real site turns headless Chrome away; a desktop Chrome, whatever
    # its version (whatsapp-web.js presents a Chrome 101), gets the page.
    return "HeadlessChrome" in user_agent
