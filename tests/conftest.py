"""Shared pytest fixtures. Implementations live in ``guard.testing`` so users can reuse them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer

# Machine quirks the tests must not depend on (see README, development).
os.environ.pop("REQUESTS_CA_BUNDLE", None)
os.environ.pop("CURL_CA_BUNDLE", None)
os.environ["RUST_BACKTRACE"] = "0"

# The built image's tests need the image: `make image-test` builds it and runs them with
# GUARD_IMAGE set. Without it they are not collected (not skipped), and the summary says so.
# the tests that run the built image (tests/image/conftest.py finds it through GUARD_IMAGE)
IMAGE_TESTS = ("image/test_image.py", "image/test_self_signed.py")
collect_ignore = [] if os.environ.get("GUARD_IMAGE") else list(IMAGE_TESTS)


# --- OCI registry (Debian's docker-registry, CNCF distribution 2.8) --------------------------
# Session-scoped servers on 127.0.0.1; each test uses its own repository names.
# `registry_factory(auth=("user", "pass"), tls=True)` starts (once per variant) and returns a
# guard.testing.registry.RegistryServer; `registry` / `registry_plain`, `registry_auth`
# (user "guard", password "guard-secret"), `registry_token` (bearer-token flow, same user; the
# token server is `.token_server`) and `registry_tls` (TLS + htpasswd, CA in `.ca_file`).
# Tests that use them should be marked `@pytest.mark.registry`.


@pytest.fixture(scope="session")
def command_paths() -> list[list[str]]:
    """Every guard command path: [] (guard itself), ["sign"], ["policy", "eval"], ... (from the
    click tree, so a command added to the CLI is covered by the tests that walk it)."""
    import typer

    from guard.cli import app

    found: list[list[str]] = [[]]
    pending: list[tuple[list[str], object]] = [([], typer.main.get_command(app))]
    while pending:
        path, command = pending.pop()
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            found.append([*path, name])
            pending.append(([*path, name], sub))
    return found


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RegistryServer]]:
    from guard.testing.registry import RegistryServer, registry_available

    servers: dict[tuple[object, bool, bool], RegistryServer] = {}

    def start(auth: tuple[str, str] | None = None, tls: bool = False, token: bool = False) -> RegistryServer:
        reason = registry_available(auth=auth is not None and not token)
        if reason is not None:
            pytest.skip(reason)
        key = (auth, tls, token)
        if key not in servers:
            root = tmp_path_factory.mktemp("registry")
            servers[key] = RegistryServer.start(root, auth=auth, tls=tls, token=token)
        return servers[key]

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def registry_plain(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    return registry_factory()


@pytest.fixture(scope="session")
def registry(registry_plain: RegistryServer) -> RegistryServer:
    return registry_plain


@pytest.fixture(scope="session")
def registry_auth(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    return registry_factory(auth=("guard", "guard-secret"))


@pytest.fixture(scope="session")
def registry_tls(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    return registry_factory(auth=("guard", "guard-secret"), tls=True)


@pytest.fixture(scope="session")
def registry_token(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    return registry_factory(auth=("guard", "guard-secret"), token=True)


# --- what was skipped, and why (so that "N skipped" never hides a missing part) ---------------
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons and not collect_ignore:
        return
    terminalreporter.section("skipped or not collected, by reason")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:5d}  {reason}")
    if collect_ignore:
        for path in collect_ignore:
            terminalreporter.write_line(
                f"    -  tests/{path} not collected (GUARD_IMAGE unset): it runs under `make image-test`"
            )
