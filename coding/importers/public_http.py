"""HTTP connections that refuse to reach loopback, private, link-local or metadata addresses.

Checking a host name before an import starts is not enough: the name may resolve
elsewhere a moment later (DNS rebinding), and a redirect may point anywhere. Here the
address is checked on the socket itself, right after it connects and before a byte is
sent, for every connection a ``requests.Session`` opens (redirects included).
Connections through an HTTP proxy are the proxy's to police.
"""

from __future__ import annotations

import ipaddress

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class PrivateAddressError(Exception):
    """A connection reached an address that web-started imports may not use."""


def is_public_address(value: str) -> bool:
    address = ipaddress.ip_address(value.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _checked(sock, host: str):
    peer = sock.getpeername()[0]
    if not is_public_address(peer):
        sock.close()
        raise PrivateAddressError(
            f"the host {host} connected to a private or local address ({peer}); "
            "imports from such addresses are not allowed here"
        )
    return sock


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self):
        return _checked(super()._new_conn(), self.host)


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        return _checked(super()._new_conn(), self.host)


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """Mount on a session (``http://`` and ``https://``) to refuse non-public peers."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }


def public_only(session) -> None:
    """Make every connection of ``session`` refuse non-public addresses."""
    adapter = PublicOnlyAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
