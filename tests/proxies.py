"""Real proxy servers for the tests, each on ports of its own: Debian's
tinyproxy (HTTP, basic authentication) and microsocks (SOCKS5, user and
password), both installed by ``deploy/setup-debian.sh``.  Each connects out
from a loopback address of its own (``127.0.0.x``), so a server on
127.0.0.1 (the stand-in) sees, by the address a request came from, which
proxy it went through, and that nothing came another way.  A TLS front
turns the HTTP one into an HTTPS proxy."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path

from support import free_port, wait_for


def _need(program: str) -> str:
    path = shutil.which(program) or (f"/usr/bin/{program}" if Path(f"/usr/bin/{program}").exists() else None)
    if path is None:
        raise AssertionError(f"{program} is not installed: run deploy/setup-debian.sh (WITH_TESTS=1)")
    return path


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class TinyProxy:
    """tinyproxy on 127.0.0.1:``port``, asking for ``user``/``password``,
    connecting out from ``out_address``; its log (every CONNECT) in
    ``log_file``."""

    def __init__(self, folder: Path, user: str, password: str, out_address: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user, self.password, self.out_address = user, password, out_address
        self.log_file = folder / "tinyproxy.log"
        conf = folder / "tinyproxy.conf"
        conf.write_text(f"Port {self.port}\nListen 127.0.0.1\nBind {out_address}\nBasicAuth {user} {password}\n"
                        f"Timeout 120\nMaxClients 100\nLogLevel Connect\nLogFile \"{self.log_file}\"\n")
        self.proc = subprocess.Popen([_need("tinyproxy"), "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        wait_for(lambda: _port_answers(self.port), timeout=10, what="tinyproxy to listen")

    def url(self, password: str | None = None, scheme: str = "http", port: int | None = None) -> str:
        return f"{scheme}://{self.user}:{self.password if password is None else password}@127.0.0.1:" \
               f"{port or self.port}"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class MicroSocks:
    """microsocks on 127.0.0.1:``port``, asking for ``user``/``password``,
    connecting out from ``out_address``."""

    def __init__(self, user: str, password: str, out_address: str):
        self.port = free_port()
        self.user, self.password, self.out_address = user, password, out_address
        self.proc = subprocess.Popen([_need("microsocks"), "-i", "127.0.0.1", "-p", str(self.port), "-u", user,
                                      "-P", password, "-b", out_address],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        wait_for(lambda: _port_answers(self.port), timeout=10, what="microsocks to listen")

    def url(self, password: str | None = None) -> str:
        return f"socks5://{self.user}:{self.password if password is None else password}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class TlsFront:
    """TLS on 127.0.0.1:``port`` in front of a plain TCP port (an HTTPS
    proxy made of an HTTP one), with a certificate for 127.0.0.1 that
    ``client_context()`` trusts."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self._tmp = Path(tempfile.mkdtemp(prefix="tls-front-"))
        key, self.cert = self._tmp / "key.pem", self._tmp / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(self.cert)], check=True, capture_output=True, timeout=60)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    async def _serve(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def stop(self) -> None:
        async def shut():
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        shutil.rmtree(self._tmp, ignore_errors=True)
