# ruff: noqa: PLC0415 - imports stay lazy
"""Registry access options, shared by every command that talks to a registry.

Declare one ``registry: RegistryOptions = NO_REGISTRY`` parameter in a ``@grouped`` command
(see ``option_groups``); ``registry.access()`` builds the RegistryAccess (reading the password
from stdin when asked) and ``registry.given()`` names the options given (for refusing them where
they do not apply).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from guard.errors import UsageError

if TYPE_CHECKING:
    from guard.oci.registry import RegistryAccess

log = logging.getLogger(__name__)
_ACCESS = "Registry access"

CaFileOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        help="PEM bundle of CAs to trust for the registry's TLS certificate (always used, "
        "whatever REQUESTS_CA_BUNDLE says).",
        rich_help_panel=_ACCESS,
        show_default=False,
    ),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="INSECURE: allow plain HTTP to a registry that is not on loopback (logged as a "
        "warning). TLS, when used, is still verified.",
        rich_help_panel=_ACCESS,
    ),
]
UsernameOption = Annotated[
    str | None,
    typer.Option(
        "--username",
        help="Registry user name (with --password-stdin).",
        rich_help_panel=_ACCESS,
        show_default=False,
    ),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the registry password or token from standard input.",
        rich_help_panel=_ACCESS,
    ),
]
DockerConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--docker-config",
        help="Docker config.json with auths / credHelpers "
        "(default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json).",
        rich_help_panel=_ACCESS,
        show_default=False,
    ),
]


def registry_access(
    ca_file: Path | None,
    insecure: bool,
    username: str | None,
    password_stdin: bool,
    docker_config: Path | None,
) -> RegistryAccess:
    """Build RegistryAccess from the CLI options (reads the password from stdin when asked)."""
    from guard.oci.registry import RegistryAccess

    password: str | None = None
    if password_stdin:
        if username is None:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: expected a password on standard input, found nothing")
    elif username is not None:
        raise UsageError("--username needs --password-stdin (passwords are never taken as arguments)")
    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"--ca-file {ca_file} does not exist")
    if insecure:
        log.warning("--insecure: plain HTTP may be used for non-loopback registries")
    return RegistryAccess(
        ca_file=ca_file,
        insecure=insecure,
        username=username,
        password=password,
        docker_config=docker_config,
        **registry_network_environment(os.environ),
    )


def registry_network_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The registry network settings a CLI user gives in the environment (CI-friendly):
    ``GUARD_REGISTRY_DEADLINE`` (seconds, the total of one registry operation),
    ``GUARD_REGISTRY_REDIRECT_HOSTS`` / ``GUARD_REGISTRY_TOKEN_HOSTS`` (comma-separated host globs)
    and ``GUARD_REGISTRY_ALLOWED_NETWORKS`` (comma-separated CIDRs)."""
    import ipaddress

    found: dict[str, Any] = {}
    deadline = environ.get("GUARD_REGISTRY_DEADLINE", "").strip()
    if deadline:
        try:
            seconds = float(deadline)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds < float("inf"):
            raise UsageError(
                f"GUARD_REGISTRY_DEADLINE: expected a number of seconds above 0, found {deadline!r}"
            )
        found["deadline"] = seconds
    for variable, key in (
        ("GUARD_REGISTRY_REDIRECT_HOSTS", "redirect_hosts"),
        ("GUARD_REGISTRY_TOKEN_HOSTS", "token_hosts"),
        ("GUARD_REGISTRY_ALLOWED_NETWORKS", "allowed_networks"),
    ):
        items = tuple(item.strip() for item in environ.get(variable, "").split(",") if item.strip())
        if key == "allowed_networks":
            for item in items:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    problem = f"{variable}: expected CIDRs such as 10.0.0.0/8, found {item!r}"
                    raise UsageError(problem) from None
        if items:
            found[key] = items
    return found


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach a registry: TLS roots, plain HTTP, credentials."""

    ca_file: CaFileOption = None
    insecure: InsecureOption = False
    username: UsernameOption = None
    password_stdin: PasswordStdinOption = False
    docker_config: DockerConfigOption = None

    def given(self) -> list[str]:
        """The options given, as typed (``--ca-file`` ...), in declaration order."""
        return [
            "--" + name.replace("_", "-")
            for name in ("ca_file", "insecure", "username", "password_stdin", "docker_config")
            if getattr(self, name)
        ]

    def access(self) -> RegistryAccess:
        return registry_access(
            self.ca_file, self.insecure, self.username, self.password_stdin, self.docker_config
        )


NO_REGISTRY = RegistryOptions()
