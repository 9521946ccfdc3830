"""Where a registry may make guard connect: the checks on redirects, token realms, upload
locations and every address guard connects to (see ``TargetPolicy``), and the well-known token
servers and blob storage of public registries."""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from guard.errors import RefusedTargetError, RegistryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance metadata: never a registry, never a redirect target (unless configured).
METADATA_NAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)

# Well-known registries' token servers and blob storage (documented in the README; a config adds more).
KNOWN_TOKEN_HOSTS: dict[str, tuple[str, ...]] = {
    "registry-1.docker.io": ("auth.docker.io",),
}
KNOWN_BLOB_HOSTS: dict[str, tuple[str, ...]] = {
    "registry-1.docker.io": ("production.cloudflare.docker.com",),
    "ghcr.io": ("pkg-containers.githubusercontent.com",),
    "quay.io": ("cdn.quay.io", "cdn01.quay.io", "cdn02.quay.io", "cdn03.quay.io"),
    "*.dkr.ecr.*.amazonaws.com": ("prod-*-starport-layer-bucket.s3.*.amazonaws.com",),
}

Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]


def _default_resolver(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def host_matches(pattern: str, host: str) -> bool:
    """``*`` matches within one DNS label (``*.example.com`` covers ``a.example.com``, not
    ``a.b.example.com``); ports must be equal when the pattern has one."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if ":" in pattern.rsplit("]", 1)[-1]:
        return fnmatch.fnmatchcase(host, pattern) and pattern.count(".") == host.count(".")
    name = _hostname(host)
    return fnmatch.fnmatchcase(name, pattern) and pattern.count(".") == name.count(".")


def _hostname(host_port: str) -> str:
    if host_port.startswith("["):
        return host_port[1 : host_port.find("]")]
    return host_port.rsplit(":", 1)[0] if host_port.count(":") == 1 else host_port


def _literal(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_class(address: IPAddress) -> str | None:
    """Why an address is not an ordinary public one (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if address.is_link_local:
        return "link-local"
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "unspecified, multicast or reserved"
    if not address.is_global:
        return "private"
    return None


@dataclass
class TargetPolicy:
    """What one registry client may connect to. The registry itself: any address but cloud
    metadata, link-local, unspecified, multicast. Another host (a redirect, a token realm, an
    upload location): only a host the policy allows, never metadata or link-local, loopback only
    when the registry is on loopback, private addresses only when the registry is on one; any of
    it allowed by ``allowed_networks``."""

    registry: str
    redirect_hosts: tuple[str, ...] = ()
    token_hosts: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = _default_resolver
    _registry_classes: set[str | None] | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        registry: str,
        *,
        redirect_hosts: Iterable[str] = (),
        token_hosts: Iterable[str] = (),
        trusted_hosts: Iterable[str] = (),
        allowed_networks: Iterable[str] = (),
        resolver: Resolver | None = None,
    ) -> TargetPolicy:
        known_blobs = [h for p, hosts in KNOWN_BLOB_HOSTS.items() if host_matches(p, registry) for h in hosts]
        known_tokens = [
            h for p, hosts in KNOWN_TOKEN_HOSTS.items() if host_matches(p, registry) for h in hosts
        ]
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)
        return cls(
            registry=registry,
            redirect_hosts=(*redirect_hosts, *known_blobs),
            token_hosts=(*token_hosts, *known_tokens),
            trusted_hosts=tuple(trusted_hosts),
            allowed_networks=networks,
            resolver=resolver or _default_resolver,
        )

    @property
    def registry_hostname(self) -> str:
        return _hostname(self.registry).lower()

    def is_registry(self, hostname: str) -> bool:
        return hostname.lower().rstrip(".") == self.registry_hostname

    # -- host names (before anything is sent) ----------------------------------------------

    def check_target(self, url: str, purpose: str, *, allowed: Sequence[str], config_key: str) -> None:
        """Refuse ``url`` (a redirect, realm or upload location) unless its host is the registry's
        or allowed; raise RefusedTargetError naming the rule."""
        shown = repr(url[:200]) + ("..." if len(url) > 200 else "")
        try:
            parsed = urlparse(url)
            hostname = (parsed.hostname or "").lower().rstrip(".")
            _ = parsed.port  # raises on a port that is not one
        except ValueError:
            hostname, parsed = "", urlparse("")
        if parsed.scheme not in ("http", "https") or not hostname or len(url) > 8192:
            raise RefusedTargetError(
                f"registry {self.registry}: refused {purpose} {shown}: expected an http(s) URL with a host"
            )
        netloc = parsed.netloc.rsplit("@", 1)[-1].lower()
        if "@" in parsed.netloc:
            raise RefusedTargetError(
                f"registry {self.registry}: refused {purpose} {shown}: a URL with credentials in it"
            )
        self.check_name(hostname, f"{purpose} {shown}")
        if self.is_registry(hostname):
            return
        candidates = (*allowed, *self.trusted_hosts)
        if not any(host_matches(p, netloc) or host_matches(p, hostname) for p in candidates):
            raise RefusedTargetError(
                f"registry {self.registry}: refused {purpose} to {hostname}: only the registry's own "
                f"host, hosts a trust rule names, and {config_key} may be connected to "
                f"(allowed here: {sorted(set(candidates)) or 'none'})"
            )
        literal = _literal(hostname)
        if literal is not None:
            self.check_address(hostname, literal)

    def check_redirect(self, url: str, purpose: str = "redirect") -> None:
        self.check_target(url, purpose, allowed=self.redirect_hosts, config_key="registry.redirect_hosts")

    def check_realm(self, url: str) -> None:
        self.check_target(url, "token realm", allowed=self.token_hosts, config_key="registry.token_hosts")

    def check_name(self, hostname: str, what: str) -> None:
        if hostname.lower().rstrip(".") in METADATA_NAMES:
            raise RefusedTargetError(
                f"registry {self.registry}: refused {what}: {hostname} is a cloud metadata service"
            )

    def check_registry(self) -> None:
        """The registry's own name: never a cloud metadata name or address, nor link-local
        (checked before any connection, a proxy or not)."""
        hostname = self.registry_hostname
        self.check_name(hostname, f"registry host {hostname}")
        literal = _literal(hostname)
        if literal is not None:
            self.check_address(hostname, literal)

    # -- addresses (at connect time) ---------------------------------------------------------

    def _allowed_by_config(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.allowed_networks if network.version == address.version
        )

    def registry_classes(self) -> set[str | None]:
        if self._registry_classes is None:
            hostname = self.registry_hostname
            literal = _literal(hostname)
            if literal is not None:
                self._registry_classes = {address_class(literal)}
            elif hostname == "localhost":
                self._registry_classes = {"loopback"}
            else:
                try:
                    infos = self.resolver(hostname, 443)
                except OSError:
                    infos = []
                self._registry_classes = {address_class(_literal(str(i[4][0])) or _UNKNOWN) for i in infos}
        return self._registry_classes

    def check_address(self, hostname: str, address: IPAddress) -> None:
        """Raise RefusedTargetError when guard must not connect to ``address`` for ``hostname``."""
        kind = address_class(address)
        if kind is None or self._allowed_by_config(address):
            return
        own = self.is_registry(hostname)
        if kind in ("cloud metadata", "link-local", "unspecified, multicast or reserved"):
            refused = True
        elif own:
            refused = False  # the registry the user (or a trust rule) named: loopback and private allowed
        else:
            refused = kind not in self.registry_classes()
        if refused:
            whose = "the registry" if own else f"{hostname}, which the registry pointed guard to,"
            raise RefusedTargetError(
                f"registry {self.registry}: refused to connect: {whose} resolves to {address}, a {kind} "
                "address; guard connects to cloud metadata and link-local addresses never, and to "
                "loopback or private addresses of another host only when the registry is on one "
                "(admission.registry.allowedNetworks, --allowed-network, lists networks to allow)"
            )

    def addresses(self, hostname: str, port: int) -> list[tuple[Any, ...]]:
        """Resolve ``hostname`` and return the address infos guard may connect to."""
        self.check_name(hostname, f"connection to {hostname}")
        literal = _literal(hostname)
        if literal is not None:
            self.check_address(hostname, literal)
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            sockaddr: tuple[Any, ...] = (
                (str(literal), port) if family == socket.AF_INET else (str(literal), port, 0, 0)
            )
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
        try:
            infos = list(self.resolver(hostname, port))
        except OSError as err:
            raise RegistryError(
                f"cannot connect to registry {self.registry}: cannot resolve {hostname}: {err}"
            ) from err
        allowed, refusal = [], None
        for info in infos:
            address = _literal(str(info[4][0]))
            if address is None:
                continue
            try:
                self.check_address(hostname, address)
            except RefusedTargetError as err:
                refusal = err
                continue
            allowed.append(info)
        if not allowed:
            if refusal is not None:
                raise refusal
            raise RegistryError(f"cannot connect to registry {self.registry}: {hostname} has no address")
        return allowed


_UNKNOWN = ipaddress.ip_address("0.0.0.0")  # noqa: S104 - a placeholder class, never connected to
