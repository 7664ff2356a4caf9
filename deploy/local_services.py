"""Which servers the run command (``deploy/run-node.sh``) runs beside the node,
on which ports, in which folders and as which user.

The node finds RabbitMQ and Redis through ``RABBIT_MQ_URL`` and ``REDIS_URL``.
When such a URL names this machine (127.0.0.1, localhost) over plain TCP
and nothing listens on its port yet, the run command runs that server itself,
under supervisord and in the foreground, so that stopping supervisord (Ctrl-C)
stops it too.  Anything else (a server already listening there, another host,
TLS, a Unix socket) is left to the URL: the run command neither starts nor
stops it.

The servers run here are not open to every local user: Redis gets a
password, and RabbitMQ a user of its own, ``wwnode`` (its ``guest`` user is
removed); both passwords are made once and kept in ``credentials`` in the
run folder (``WWNODE_RUN``, 0700, the run command's own), a 0600 file of
``NAME=value`` lines that also holds the node's URLs, for clients and
``wwnode status`` (``set -a; . data/run/credentials; set +a``).  The run
folder, rather than ``/etc``: it belongs to this run command (a second one
beside it has its own, as it has its own ports), it exists before anything
starts, and it needs no root.  The node gets them in its URLs; a server the
run command does not start keeps the URL as it is.  The RabbitMQ run here
also gets the policy that bounds the event queues nobody may read
(``deploy/rabbitmq-setup.sh``, run by supervisord once the broker is up).

RabbitMQ runs as the ``rabbitmq`` user and Redis as ``redis`` when the run
command runs as root and those users exist (Debian's packages make them),
otherwise as the user running the command.  A local RabbitMQ needs epmd,
Erlang's name server, on ``ERL_EPMD_PORT``: one already running there is
shared (every Erlang node of a machine registers with it, and it outlives
them by design); if none runs, supervisord runs one and stops it last.

Settings, from the environment, then ``./.env`` (as the node reads its own):

  WWNODE_RABBITMQ_DIR        the local RabbitMQ's data, logs and optional
                             rabbitmq.conf; default: ~rabbitmq/wwnode-{port}
                             when it runs as the rabbitmq user, else
                             data/rabbitmq-{port}
  WWNODE_RABBITMQ_NODENAME   its Erlang node name; default wwnode-{port}@localhost
  WWNODE_RABBITMQ_DIST_PORT  its Erlang distribution port; default port + 20000
                             (RabbitMQ's own rule)
  ERL_EPMD_PORT              epmd's port; default 4369 (Erlang's own setting)
  WWNODE_RABBITMQ_MANAGEMENT_PORT  the local RabbitMQ's management panel
                             (rabbitmq_management, on 127.0.0.1 only); default
                             15672.  Its user is the node's, ``wwnode``
                             (tagged ``monitoring``), with the password kept in
                             ``credentials``; ``guest`` does not exist there
  WWNODE_REDIS_DIR           the local Redis's folder; default ~redis/wwnode-{port}
                             or data/redis-{port}, as above
  WWNODE_QUEUE_MAX_LENGTH    messages each bounded queue keeps (the four old
                             event queues, wa.dead_letter); default 100000
  WWNODE_QUEUE_TTL           seconds a message waits there at most; default
                             604800 (7 days)

Run as a script it prints the decisions as ``export NAME=value`` lines for
the run command to evaluate (``deploy/supervisord.conf`` reads them), makes
the folders of the servers it runs, and explains itself on stderr.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's, without its su wrapper
LOOPBACK = ("127.0.0.1", "localhost")  # the servers run here listen on 127.0.0.1 only
RABBITMQ_USER = "wwnode"  # the node's user on a RabbitMQ run here
CREDENTIALS = "credentials"  # in the run folder
REDIS_CONF = "wwnode-redis.conf"  # in the local Redis's folder: its password, off its command line
MANAGEMENT_CONF = "conf.d/10-wwnode-management.conf"  # in the local RabbitMQ's folder
ENABLED_PLUGINS = "enabled_plugins"  # in the local RabbitMQ's folder


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class Credentials:
    """The passwords of the servers the run command runs here."""
    rabbitmq: str
    redis: str


def credentials(path: Path, make: Callable[[], str] = lambda: secrets.token_urlsafe(24)) -> Credentials:
    """The passwords kept in this file, made on first use.  URL-safe
    characters only: they go into URLs and configuration files as they are."""
    kept = read_kept(path)
    return Credentials(kept.get("WWNODE_RABBITMQ_PASSWORD") or make(), kept.get("WWNODE_REDIS_PASSWORD") or make())


def read_kept(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    pairs = (line.partition("=") for line in path.read_text().splitlines() if not line.startswith("#"))
    return {name.strip(): value.strip() for name, sep, value in pairs if sep}


def keep_credentials(path: Path, creds: Credentials, env: Mapping[str, str]) -> None:
    """Write the passwords, and the node's URLs for the servers run here,
    to this file, readable by its owner only from the first byte."""
    lines = ["# The passwords of the RabbitMQ and Redis that deploy/run-node.sh runs on this machine,",
             "# made once and kept.  Clients and `wwnode status` use the URLs below:",
             "#   set -a; . THIS_FILE; set +a",
             f"WWNODE_RABBITMQ_PASSWORD={creds.rabbitmq}", f"WWNODE_REDIS_PASSWORD={creds.redis}"]
    if env["WWNODE_LOCAL_RABBITMQ"] == "true":
        lines.append(f"RABBIT_MQ_URL={env['RABBIT_MQ_URL']}")
    if env["WWNODE_LOCAL_REDIS"] == "true":
        lines.append(f"REDIS_URL={env['REDIS_URL']}")
    _write_private(path, "\n".join(lines) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write a file that is 0600 from its first byte (a fresh file, put in
    place whole), whatever an older one was."""
    fresh = path.with_name(path.name + ".new")
    fresh.unlink(missing_ok=True)
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(fresh, path)


def with_password(url: str, user: str, password: str) -> str:
    """The URL with this user and password, and no password in its query."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = "&".join(item for item in parts.query.split("&")
                     if item and "pass" not in unquote(item.partition("=")[0]).lower())
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def node_urls(env: Mapping[str, str], rabbit_mq_url: str, redis_url: str, creds: Credentials) -> dict[str, str]:
    """The node's URLs and the broker's password for the servers run here
    (deploy/supervisord.conf gives it to RabbitMQ and its setup)."""
    out = {}
    if env["WWNODE_LOCAL_RABBITMQ"] == "true":
        out.update(RABBIT_MQ_URL=with_password(rabbit_mq_url, RABBITMQ_USER, creds.rabbitmq),
                   WWNODE_RABBITMQ_PASSWORD=creds.rabbitmq)
    if env["WWNODE_LOCAL_REDIS"] == "true":
        out.update(REDIS_URL=with_password(redis_url, "", creds.redis))
    return out


@dataclass(frozen=True)
class Machine:
    """What the plan asks of this machine; tests hand in their own."""
    listening: Callable[[int], bool]
    uid: int
    home_of: Callable[[str], Path | None]  # a user's home folder, None if there is no such user
    name_of: Callable[[int], str]


def this_machine() -> Machine:
    def listening(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def home_of(user: str) -> Path | None:
        try:
            return Path(pwd.getpwnam(user).pw_dir)
        except KeyError:
            return None

    return Machine(listening, os.getuid(), home_of, lambda uid: pwd.getpwuid(uid).pw_name)


def local_port(url: str, scheme: str, default_port: int) -> int | None:
    """The port of a URL of this plain-TCP scheme on this machine, else None
    (a TLS URL, amqps:// or rediss://, is never served here)."""
    parts = urlsplit(url)
    if parts.scheme != scheme or parts.hostname not in LOOPBACK:
        return None
    try:
        return parts.port or default_port
    except ValueError:
        raise PlanError(f"{url.split('@')[-1]}: not a valid port") from None


def plan(settings: Mapping[str, str], rabbit_mq_url: str, redis_url: str, home: Path,
         machine: Machine) -> dict[str, str]:
    """The run command's environment for deploy/supervisord.conf.  Every
    variable is set, also for servers that do not run here: supervisord
    needs them all to read its configuration."""
    me = machine.name_of(machine.uid)
    out: dict[str, str] = {}
    amqp = local_port(rabbit_mq_url, "amqp", 5672)
    run_rabbitmq = amqp is not None and not machine.listening(amqp)
    amqp = amqp or 5672
    user, user_home = _server_user("rabbitmq", me, home, machine)
    dist = _port(settings, "WWNODE_RABBITMQ_DIST_PORT", amqp + 20000)
    epmd = _port(settings, "ERL_EPMD_PORT", 4369)
    if run_rabbitmq and machine.listening(dist):
        raise PlanError(f"port {dist} (WWNODE_RABBITMQ_DIST_PORT) is in use: choose another")
    panel = _port(settings, "WWNODE_RABBITMQ_MANAGEMENT_PORT", 15672)
    if run_rabbitmq and machine.listening(panel):
        raise PlanError(f"port {panel} (WWNODE_RABBITMQ_MANAGEMENT_PORT, the broker's management panel) is in "
                        f"use: choose another")
    out.update(
        WWNODE_LOCAL_RABBITMQ=_flag(run_rabbitmq),
        WWNODE_LOCAL_EPMD=_flag(run_rabbitmq and not machine.listening(epmd)),
        WWNODE_RABBITMQ_USER=user, WWNODE_RABBITMQ_HOME=str(user_home),
        WWNODE_RABBITMQ_PORT=str(amqp), WWNODE_RABBITMQ_DIST_PORT=str(dist), ERL_EPMD_PORT=str(epmd),
        WWNODE_RABBITMQ_MANAGEMENT_PORT=str(panel),
        WWNODE_RABBITMQ_NODENAME=settings.get("WWNODE_RABBITMQ_NODENAME") or f"wwnode-{amqp}@localhost",
        WWNODE_RABBITMQ_DIR=_folder(settings, "WWNODE_RABBITMQ_DIR", "rabbitmq", amqp, user, me, user_home, home),
    )
    if not re.fullmatch(r"[A-Za-z0-9_-]+@[A-Za-z0-9_.-]+", out["WWNODE_RABBITMQ_NODENAME"]):
        raise PlanError("WWNODE_RABBITMQ_NODENAME must look like name@host (A-Z a-z 0-9 _ -)")
    out.update(_broker_setup(settings, rabbit_mq_url))

    port = local_port(redis_url, "redis", 6379)
    run_redis = port is not None and not machine.listening(port)
    port = port or 6379
    user, user_home = _server_user("redis", me, home, machine)
    out.update(
        WWNODE_LOCAL_REDIS=_flag(run_redis), WWNODE_REDIS_USER=user, WWNODE_REDIS_PORT=str(port),
        WWNODE_REDIS_DIR=_folder(settings, "WWNODE_REDIS_DIR", "redis", port, user, me, user_home, home),
    )
    return out


def _broker_setup(settings: Mapping[str, str], rabbit_mq_url: str) -> dict[str, str]:
    """What deploy/rabbitmq-setup.sh sets up on a RabbitMQ run here: the
    node's virtual host (from its URL) and the bounded-queue policy.  The
    password is set apart (``node_urls``), only when the broker runs here."""
    from wwnode.amqp.topology import bounded_policy

    path = urlsplit(rabbit_mq_url).path
    vhost = unquote(path[1:].split("/")[0]) if len(path) > 1 else "/"
    if not re.fullmatch(r"[A-Za-z0-9_./-]{1,64}", vhost):
        raise PlanError("the virtual host of RABBIT_MQ_URL may only hold A-Z a-z 0-9 _ . / - here")
    pattern, definition = bounded_policy(_number(settings, "WWNODE_QUEUE_MAX_LENGTH", 100_000),
                                         _number(settings, "WWNODE_QUEUE_TTL", 7 * 24 * 3600))
    return dict(WWNODE_RABBITMQ_VHOST=vhost, WWNODE_RABBITMQ_PASSWORD="", WWNODE_QUEUE_POLICY_PATTERN=pattern,
                WWNODE_QUEUE_POLICY=definition)


def _number(settings: Mapping[str, str], setting: str, default: int) -> int:
    raw = settings.get(setting) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise PlanError(f"{setting}: {raw!r} is not a whole number of at least 1")
    return int(raw)


def _server_user(name: str, me: str, home: Path, machine: Machine) -> tuple[str, Path]:
    """The server's own user when root can switch to it, else the caller."""
    own_home = machine.home_of(name)
    if machine.uid == 0 and own_home is not None:
        return name, own_home
    return me, machine.home_of(me) or home


def _folder(settings, setting: str, name: str, port: int, user: str, me: str, user_home: Path,
            home: Path) -> str:
    default = user_home / f"wwnode-{port}" if user != me else home / "data" / f"{name}-{port}"
    folder = Path(settings.get(setting) or default)
    folder = folder if folder.is_absolute() else home / folder
    if re.search(r"[\"'\\%\n,]", str(folder)):
        raise PlanError(f"{setting}: {str(folder)!r} may not contain quotes, backslashes, %, commas or newlines")
    return str(folder)


def _port(settings: Mapping[str, str], setting: str, default: int) -> int:
    raw = settings.get(setting) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise PlanError(f"{setting}: {raw!r} is not a port (1-65535)")
    return int(raw)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def prepare(env: Mapping[str, str], uid: int, creds: Credentials | None = None) -> None:
    """Make the folders of the servers that run here, private to their
    user, check their programs are installed, and give the local Redis its
    password (a 0600 file of its user, not its command line, which any
    local user can read)."""
    wanted = [("RABBITMQ", RABBITMQ_SERVER), ("REDIS", shutil.which("redis-server"))]
    for name, program in wanted:
        if env[f"WWNODE_LOCAL_{name}"] != "true":
            continue
        if not program or not os.access(program, os.X_OK):
            raise PlanError(f"{name.lower()}-server is not installed (apt-get install {name.lower()}-server), "
                            f"or point the URL at a running server")
        folder, user = Path(env[f"WWNODE_{name}_DIR"]), env[f"WWNODE_{name}_USER"]
        folder.mkdir(parents=True, exist_ok=True)
        if uid == 0:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            reach = subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(folder)])
            if reach.returncode != 0:
                raise PlanError(f"the {user} user cannot write to {folder}: set WWNODE_{name}_DIR to a "
                                f"folder it can reach")
        folder.chmod(0o700)
        if name == "REDIS" and creds is not None:
            conf = folder / REDIS_CONF
            _write_private(conf, f"# Written by deploy/local_services.py at every start.\nrequirepass {creds.redis}\n")
            if uid == 0:
                os.chown(conf, entry.pw_uid, entry.pw_gid)
        if name == "RABBITMQ":
            for path in management_panel(folder, int(env["WWNODE_RABBITMQ_MANAGEMENT_PORT"])):
                if uid == 0:
                    os.chown(path, entry.pw_uid, entry.pw_gid)
    if env["WWNODE_LOCAL_EPMD"] == "true" and not shutil.which("epmd"):
        raise PlanError("epmd is not installed (it comes with rabbitmq-server)")


def management_panel(folder: Path, port: int) -> list[Path]:
    """Turn the broker's management panel on, on 127.0.0.1:``port``: the
    plugin added to the folder's ``enabled_plugins`` (plugins enabled there
    before are kept) and its listener in a file of the folder's ``conf.d``
    (deploy/supervisord.conf points RabbitMQ there; the folder's own
    ``rabbitmq.conf``, if any, is read as well).  The files written."""
    plugins = folder / ENABLED_PLUGINS
    kept = []
    if plugins.is_file():  # an Erlang list: [a,b].
        text = plugins.read_text().strip().rstrip(".").strip().strip("[]")
        kept = [p.strip() for p in text.split(",") if p.strip()]
    if "rabbitmq_management" not in kept:
        kept.append("rabbitmq_management")
    plugins.write_text("[" + ",".join(kept) + "].\n")
    conf = folder / MANAGEMENT_CONF
    conf.parent.mkdir(exist_ok=True)
    conf.write_text("# Written by deploy/local_services.py at every start: the management panel, on this\n"
                    "# machine only (reach it from elsewhere through an SSH tunnel).\n"
                    f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {port}\n")
    return [plugins, conf.parent, conf]


def describe(env: Mapping[str, str]) -> list[str]:
    lines = []
    if env["WWNODE_LOCAL_RABBITMQ"] == "true":
        epmd = "its own epmd" if env["WWNODE_LOCAL_EPMD"] == "true" else "the running epmd"
        lines.append(f"RabbitMQ runs here on 127.0.0.1:{env['WWNODE_RABBITMQ_PORT']} as "
                     f"{env['WWNODE_RABBITMQ_NODENAME']} ({env['WWNODE_RABBITMQ_USER']}, "
                     f"{env['WWNODE_RABBITMQ_DIR']}; {epmd} on {env['ERL_EPMD_PORT']}); its management panel "
                     f"on http://127.0.0.1:{env['WWNODE_RABBITMQ_MANAGEMENT_PORT']}/ (user wwnode)")
    else:
        lines.append("RabbitMQ: the one RABBIT_MQ_URL names (not started here)")
    if env["WWNODE_LOCAL_REDIS"] == "true":
        lines.append(f"Redis runs here on 127.0.0.1:{env['WWNODE_REDIS_PORT']} ({env['WWNODE_REDIS_USER']}, "
                     f"{env['WWNODE_REDIS_DIR']})")
    else:
        lines.append("Redis: the one REDIS_URL names (not started here)")
    if "true" in (env["WWNODE_LOCAL_RABBITMQ"], env["WWNODE_LOCAL_REDIS"]):
        lines.append(f"passwords of the servers run here, and the node's URLs: {env['WWNODE_CREDENTIALS']} (0600)")
    return lines


def main() -> int:
    from wwnode.config import ConfigError, load, read_dotenv

    home = Path.cwd()
    try:
        settings = {**read_dotenv(home / ".env"), **os.environ}
        config = load()
        machine = this_machine()
        env = plan(settings, config.rabbit_mq_url, config.redis_url, home, machine)
        creds = None
        if "true" in (env["WWNODE_LOCAL_RABBITMQ"], env["WWNODE_LOCAL_REDIS"]):
            kept = Path(settings.get("WWNODE_RUN") or home / "data" / "run") / CREDENTIALS
            creds = credentials(kept)
            env.update(node_urls(env, config.rabbit_mq_url, config.redis_url, creds), WWNODE_CREDENTIALS=str(kept))
            keep_credentials(kept, creds, env)
        prepare(env, machine.uid, creds)
    except (ConfigError, PlanError) as e:
        print(f"run-node: {e}", file=sys.stderr)
        return 2
    for line in describe(env):
        print(f"run-node: {line}", file=sys.stderr)
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
