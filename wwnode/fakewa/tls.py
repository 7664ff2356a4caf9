"""A self-signed certificate for ``fakewa --tls``, so a browser can open
the stand-in as ``https://web.whatsapp.com/`` (with
``--host-resolver-rules="MAP web.whatsapp.com 127.0.0.1:PORT"`` and
``--ignore-certificate-errors``), the address real clients open.

The certificate is made by the ``openssl`` command, which every Debian
machine with CA certificates has, rather than by a Python package the
project would otherwise not need; it lives only in memory once loaded.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

NAMES = ("web.whatsapp.com", "localhost")
ADDRESSES = ("127.0.0.1",)


class TLSUnavailable(Exception):
    """No certificate could be made (no ``openssl`` command, or it failed)."""


def self_signed_context() -> ssl.SSLContext:
    """A server context with a fresh key and certificate for NAMES and
    ADDRESSES, valid for a week."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TLSUnavailable("--tls needs the openssl command (Debian package openssl)")
    san = ",".join([f"DNS:{n}" for n in NAMES] + [f"IP:{a}" for a in ADDRESSES])
    with tempfile.TemporaryDirectory(prefix="fakewa-tls-") as tmp:
        key, cert = Path(tmp, "key.pem"), Path(tmp, "cert.pem")
        done = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "7", "-subj", f"/CN={NAMES[0]}", "-addext", f"subjectAltName={san}",
             "-keyout", str(key), "-out", str(cert)],
            capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise TLSUnavailable(f"openssl could not make a certificate: {done.stderr.strip()[-300:]}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    return context
