"""Which requests came through a trusted proxy: only theirs say who the client is and whether it used https.

A proxy that terminates TLS (a PaaS router, nginx) tells the app the client's address and scheme in
X-Forwarded-For and X-Forwarded-Proto, but anyone can send those headers. They count only when the
connection comes from an address FORWARDED_ALLOW_IPS names (gunicorn.conf.py gives gunicorn the same
list; waitress, behind `serve`, trusts no header itself). Then the last X-Forwarded-For entry (the
one the proxy added) becomes `request.remote_addr`, which the sign-in limit counts by, and https
makes the session cookie Secure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from werkzeug.middleware.proxy_fix import ProxyFix

__all__ = ["TrustedProxies"]


class TrustedProxies:
    """WSGI middleware: werkzeug's ProxyFix (one proxy: X-Forwarded-For and -Proto), for trusted peers only."""

    def __init__(self, app, trusted: Iterable[str]):
        trusted = tuple(trusted)
        self._app = app
        self._fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=0, x_port=0, x_prefix=0)
        self._anyone = "*" in trusted
        self._networks = tuple(ipaddress.ip_network(entry) for entry in trusted if entry != "*")

    def __call__(self, environ, start_response):
        if self._trusts(environ.get("REMOTE_ADDR")):
            return self._fixed(environ, start_response)
        return self._app(environ, start_response)

    def _trusts(self, peer: str | None) -> bool:
        if self._anyone:
            return True
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:  # no address (a UNIX socket): trusted only under "*"
            return False
        return any(address in network for network in self._networks)
