"""The node's settings: environment variables, with a ``.env`` file in the
working directory as defaults (the environment wins).  Every setting is
listed, with a comment, in ``.env.example``."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from sessionproc.protocol import DEFAULT_BOOT_TIMEOUT, USER_AGENT_RE
from sessionproc.queries import MAX_ITEMS as QUERY_ITEMS_BOUND

# redact_url: the node's parts import it from here.
from .redact import ambiguous_url, redact_url, split_urls  # noqa: F401
from .redis_side.conn import parse_sentinels


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    rabbit_mq_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis Sentinel (host:port,...): the node uses the master they name
    # (REDIS_URL then gives only the database and password), and follows a
    # failover.  Empty: REDIS_URL's server.
    redis_sentinels: str = ""
    redis_master_name: str = "mymaster"
    # Seconds a lease or fence write waits for a replica of the master to
    # have it (0: not waited for; see docs/ha.md).
    redis_replica_wait: float = 0.5
    wa_url: str = "https://web.whatsapp.com/"
    node_id: str = ""
    data_dir: Path = Path("data")
    chrome_path: str = "/usr/bin/chromium"
    chromedriver_path: str = "/usr/bin/chromedriver"
    user_agent: str = ""
    qr_ttl: int = 60
    qr_max: int = 5
    max_sessions: int = 0
    admit_high: float = 90.0
    admit_low: float = 80.0
    load_interval: float = 2.0
    load_window: int = 5
    send_timeout: float = 60.0
    send_hold: float = 60.0
    send_dedup_window: float = 86400.0
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    # The page's time to load; the node's own deadline is a little longer
    # (see health.py), so the session's report of why comes first.
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT
    send_seen: bool = True
    stop_timeout: float = 20.0
    restore_stagger: float = 2.0
    start_concurrency: int = 0
    # Sessions forked from one process that has imported them (warmstarts.py),
    # rather than each a new Python; off: every start is cold.
    warm_starts: bool = True
    # A new session's profile starts as a copy of one Chromium made and
    # closed, made once per Chromium version (sessionproc/profiletemplate.py):
    # a sixth of a new session's boot CPU.  Kept in PROFILE_TEMPLATE_DIR
    # (empty: DATA_DIR/profile-templates); nodes may share one.
    profile_templates: bool = True
    profile_template_dir: str = ""
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 120.0
    crash_limit: int = 5
    crash_window: float = 300.0
    lease_ttl: float = 15.0
    node_queue_ttl: float = 30.0
    heartbeat_interval: float = 5.0
    amqp_heartbeat: int = 10
    command_prefetch: int = 50
    # Bytes of command bodies the node holds at once (0: no limit): past it
    # a command waits in its queue until some are done (amqp/holding.py).
    # RabbitMQ counts the prefetch in messages only (docs/decisions.md, "A
    # byte limit on the commands a node holds").
    command_bytes_limit: int = 256 * 1024 * 1024
    spool_limit: int = 100_000
    # A dead-lettered command body longer than this many bytes is kept cut
    # to it, its size in the ``x-original-size`` header.
    # 1 MiB: no command a client may validly send is cut (a text of 65,536
    # characters is at most about 256 KiB of UTF-8); a 10 MB body is.
    dead_letter_max_body: int = 1024 * 1024
    log_message_bodies: bool = False
    log_level: str = "INFO"
    # node.log and each session's log: rotated past this size (0: never),
    # keeping this many old copies (logfiles.py).
    log_max_bytes: int = 10_000_000
    log_backups: int = 5
    # MB of PSS a session's process tree may use before it is restarted at
    # a quiet moment (0: no limit), measured every this many seconds (memory.py).
    session_memory_limit: float = 0.0
    memory_check_interval: float = 60.0
    # Media (media/: request.py, desk.py, inbound.py).  Inbound media up to this
    # many bytes rides inside message_instance (base64); larger goes to the
    # blob store.
    media_inline_limit: int = 1024 * 1024
    # The largest file a send fetches or takes (documents; photos, videos
    # and audio have WhatsApp's own 16 MB limit below it).
    media_max_size: int = 100 * 1024 * 1024
    media_fetch_timeout: float = 30.0
    # Let media URLs name private, loopback and link-local addresses.
    media_allow_private_urls: bool = False
    # The program a session runs, ``python -m <this>``.  For tests only (a
    # stand-in session that speaks the pipe protocol).
    session_module: str = "sessionproc"
    # Where the load readings come from, a folder laid out as the kernel's
    # cgroup files (empty: /sys/fs/cgroup).  For tests only: readings of
    # their choice on a machine that others keep busy.
    load_cgroup_root: str = ""
    # Where GET /metrics and GET /healthz are served, host:port (empty: not
    # served; port 0: one the system picks, named in the heartbeat).
    metrics_addr: str = "127.0.0.1:9464"
    # The blob store (blobstore.py): file:///path or s3://bucket/prefix;
    # empty: the folder DATA_DIR/blobs.  BLOB_STORE_ENDPOINT: an S3 endpoint
    # other than AWS's (MinIO, Ceph RGW, R2).
    blob_store_url: str = ""
    blob_store_endpoint: str = ""
    # Seconds between two snapshots of a running session's login (0: only
    # when it authenticates and when it stops cleanly; snapshots.py).
    profile_snapshot_interval: float = 600.0
    # A secret every node of the fleet shares: snapshots are sealed under
    # it, and one not sealed under it is never restored (snapshots.py).
    # Empty: sealed without a secret (whole, bound to their key), which
    # stops accidents and copies but not a forger who can write the store.
    snapshot_secret: str = ""
    # The most items one query_result_instance holds (chats, messages,
    # contacts): a query's limit may not be larger, and is this without one.
    query_max_items: int = 100
    # What the fleet does with the keys of a node that lost its leases:
    # manual (report them lost) or auto (start them elsewhere from their
    # snapshots; failover.py).
    failover: str = "manual"


def _env_name(field_name: str) -> str:
    return field_name.upper()


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        name, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{n}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def load(environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Config:
    env = dict(read_dotenv(dotenv)) if dotenv else {}
    env.update(os.environ if environ is None else environ)
    kwargs = {}
    for f in fields(Config):
        raw = env.get(_env_name(f.name))
        if raw is None or raw == "":
            continue
        kwargs[f.name] = _convert(f.name, f.type, raw)
    cfg = Config(**kwargs)
    if not cfg.node_id:
        cfg = replace(cfg, node_id=socket.gethostname())
    _check(cfg)
    return cfg


def _convert(name: str, type_name, raw: str):
    kind = type_name if isinstance(type_name, str) else type_name.__name__
    env = _env_name(name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw)
        return raw
    except ValueError:
        raise ConfigError(f"{env}: {raw!r} is not a valid {kind}") from None


def _check(cfg: Config) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", cfg.node_id):
        raise ConfigError("NODE_ID must be 1 to 64 characters of A-Z a-z 0-9 _ . -")
    if any(urlsplit(url).scheme not in ("amqp", "amqps") for url in split_urls(cfg.rabbit_mq_url)):
        raise ConfigError("RABBIT_MQ_URL must be an amqp:// or amqps:// URL, or several, comma-separated")
    if urlsplit(cfg.redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
    for name in ("rabbit_mq_url", "redis_url"):
        if ambiguous_url(getattr(cfg, name)):
            # The URL itself is not quoted: it holds a password.
            raise ConfigError(f"{_env_name(name)}: cannot tell where its password ends; percent-encode "
                              f"/ ? # @ in the user name and password (%2F %3F %23 %40)")
    try:
        parse_sentinels(cfg.redis_sentinels)
    except ValueError as e:
        raise ConfigError(f"REDIS_SENTINELS: {e}; expected host:port,host:port,...") from None
    if cfg.redis_sentinels and not cfg.redis_master_name:
        raise ConfigError("REDIS_MASTER_NAME must name the master the sentinels watch")
    if cfg.redis_replica_wait < 0:
        raise ConfigError("REDIS_REPLICA_WAIT must be 0 (no wait) or more")
    if cfg.dead_letter_max_body < 1024:
        raise ConfigError("DEAD_LETTER_MAX_BODY must be at least 1024")
    if cfg.command_bytes_limit and cfg.command_bytes_limit < 1024 * 1024:
        raise ConfigError("COMMAND_BYTES_LIMIT must be 0 (no limit) or at least 1048576 (1 MiB)")
    if urlsplit(cfg.wa_url).scheme not in ("http", "https"):
        raise ConfigError("WA_URL must be an http(s) URL")
    if cfg.user_agent and not USER_AGENT_RE.match(cfg.user_agent):
        raise ConfigError("USER_AGENT must be 1 to 512 printable ASCII characters (empty: the default)")
    if not 0 < cfg.admit_low < cfg.admit_high <= 100:
        raise ConfigError("need 0 < ADMIT_LOW < ADMIT_HIGH <= 100")
    for name in ("qr_ttl", "qr_max", "load_window", "crash_limit", "command_prefetch", "amqp_heartbeat",
                 "spool_limit"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{_env_name(name)} must be at least 1")
    for name in ("load_interval", "send_timeout", "ping_interval", "ping_timeout", "stop_timeout",
                 "backoff_initial", "backoff_max", "lease_ttl", "heartbeat_interval", "crash_window",
                 "node_queue_ttl", "send_dedup_window", "boot_timeout"):
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"{_env_name(name)} must be positive")
    if cfg.log_max_bytes < 0 or cfg.log_backups < 1:
        raise ConfigError("LOG_MAX_BYTES must be 0 (no rotation) or more, LOG_BACKUPS at least 1")
    if cfg.session_memory_limit < 0 or cfg.memory_check_interval <= 0:
        raise ConfigError("SESSION_MEMORY_LIMIT must be 0 (no limit) or more, MEMORY_CHECK_INTERVAL positive")
    if cfg.max_sessions < 0 or cfg.start_concurrency < 0:
        raise ConfigError("MAX_SESSIONS and START_CONCURRENCY must be 0 or more")
    if cfg.metrics_addr and not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}", cfg.metrics_addr):
        raise ConfigError("METRICS_ADDR must be host:port (an IPv6 host in brackets), or empty to serve nothing")
    if cfg.failover not in ("manual", "auto"):
        raise ConfigError("FAILOVER must be manual or auto")
    if cfg.profile_snapshot_interval < 0:
        raise ConfigError("PROFILE_SNAPSHOT_INTERVAL must be 0 (off) or more")
    if cfg.blob_store_url:
        from .blobstore import BlobError, check_url
        try:
            check_url(cfg.blob_store_url)
        except BlobError as e:
            raise ConfigError(str(e)) from None
    if cfg.media_inline_limit < 0 or cfg.media_max_size < 1 or cfg.media_fetch_timeout <= 0:
        raise ConfigError("MEDIA_INLINE_LIMIT must be 0 or more, MEDIA_MAX_SIZE and MEDIA_FETCH_TIMEOUT positive")
    if not 1 <= cfg.query_max_items <= QUERY_ITEMS_BOUND:
        raise ConfigError(f"QUERY_MAX_ITEMS must be 1 to {QUERY_ITEMS_BOUND}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", cfg.session_module):
        raise ConfigError("SESSION_MODULE must be a Python module name")



def setting_names() -> list[str]:
    """Every setting's environment variable (the node's, not a session's:
    see ``redact.session_environment``)."""
    return [_env_name(f.name) for f in fields(Config)]
