"""The session's settings as the node hands them over: a JSON file in the
profile (``protocol.SETTINGS_FILE``), named by ``--settings-file``.  The
session takes from it what it acts on itself: its proxy, and the kinds of
chat whose messages it does not report.  The rest (marking chats read,
typing, pacing) the node applies send by send."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from .protocol import IGNORABLE
from .proxyurl import BadProxy, ProxyUrl, parse_proxy


class BadSettingsFile(ValueError):
    """The file cannot be read as settings; the text says why, never the
    proxy's password."""


@dataclass(frozen=True)
class SessionSettings:
    proxy: ProxyUrl | None = None
    ignore: tuple[str, ...] = ()


def read(path: Path | None) -> SessionSettings:
    if path is None:
        return SessionSettings()
    try:
        obj = orjson.loads(path.read_bytes())
    except OSError as e:
        raise BadSettingsFile(f"cannot read the settings file {path}: {e.strerror}") from None
    except orjson.JSONDecodeError:
        raise BadSettingsFile(f"the settings file {path} is not JSON") from None
    if not isinstance(obj, dict):
        raise BadSettingsFile(f"the settings file {path} does not hold an object")
    proxy = None
    if obj.get("proxy") is not None:
        try:
            proxy = parse_proxy(obj["proxy"])
        except BadProxy as e:
            raise BadSettingsFile(f"the settings file's proxy: {e}") from None
    ignore = obj.get("ignore") or []
    if not isinstance(ignore, list) or not all(kind in IGNORABLE for kind in ignore):
        raise BadSettingsFile(f"the settings file's ignore must list {', '.join(IGNORABLE)}")
    return SessionSettings(proxy, tuple(ignore))
