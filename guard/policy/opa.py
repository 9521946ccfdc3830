"""The OPA server engine: queries an OPA server's Data API with ``opa-python-client``.

One ``POST /v1/data/<package_root>`` with ``{"input": ...}`` returns every package below
``guard``; the ``deny`` / ``warn`` sets of each ``<bundle>.<policy>`` found there are turned into
the same ``Decision`` the embedded engine returns. Build the OPA bundle from the same library
without the tests (``opa build -b policies --ignore '*_test.rego' --ignore samples``).

Failures are ``PolicyEngineError`` with a message naming the server and what went wrong:
unreachable, timed out, an HTTP error, no document at the package root (bundle not loaded),
or policies of the local library missing on the server.

Tested against OPA's own evaluator (``guard.testing.opa``: OPA's Go library behind a Data API
server), with every sample of the library giving the embedded engine's violations and messages.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from opa_client import AsyncOpaClient

from guard.errors import ConfigError, PolicyEngineError
from guard.policy.decision import Decision, Enforcement, decide
from guard.policy.settings import OpaEngineSettings


class _Client(AsyncOpaClient):  # type: ignore[misc]
    """opa-python-client with our TLS context (a private CA file; verification always on)."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ssl_context = ssl_context

    async def _init_session(self) -> None:
        # Same session as the library builds, with our SSLContext instead of its default one.
        self._connector = aiohttp.TCPConnector(ssl=self._ssl_context if self._ssl_context else False)
        self._session = aiohttp.ClientSession(
            headers=self.headers,
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )


def collect_decision_sets(result: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"supply_chain": {"signature": {"deny": [...]}}}`` -> ``{"supply_chain.signature": {...}}``."""
    found: dict[str, Any] = {}
    for bundle, policies in result.items():
        if bundle == "lib" or not isinstance(policies, Mapping):
            continue
        for name, doc in policies.items():
            if isinstance(doc, Mapping) and ("deny" in doc or "warn" in doc):
                found[f"{prefix}{bundle}.{name}"] = {k: doc[k] for k in ("deny", "warn") if k in doc}
    return found


class OpaEngine:
    """Asks an OPA server. Reuse one instance per event loop; ``aclose()`` when done."""

    def __init__(
        self,
        settings: OpaEngineSettings,
        enforcement_for: Callable[[str], Enforcement],
        *,
        expected: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self._enforcement_for = enforcement_for
        self._expected = tuple(expected)
        parts = urlsplit(settings.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._token = self._read_token()
        self._client: _Client | None = None
        self._path = settings.package_root.replace(".", "/")

    def _read_token(self) -> str | None:
        if self.settings.token_file is None:
            return None
        try:
            return self.settings.token_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(
                f"policy.engine.tokenFile: cannot read {self.settings.token_file}: {err}"
            ) from err

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self._https:
            return None
        context = ssl.create_default_context()
        if self.settings.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.settings.ca_file))
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(
                    f"policy.engine.caFile: cannot load {self.settings.ca_file}: {err}"
                ) from err
        return context

    async def _session(self) -> _Client:
        if self._client is None:
            client = _Client(
                ssl_context=self._ssl_context(),
                host=self._host,
                port=self._port,
                ssl=self._https,
                token=self._token,
                timeout=self.settings.timeout_seconds,
                retries=0,
            )
            await client._init_session()
            self._client = client
        return self._client

    async def evaluate_raw(self, document: Mapping[str, Any]) -> dict[str, Any]:
        client = await self._session()
        where = f"OPA at {self.settings.url} (data.{self.settings.package_root})"
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                answer = await client.query_rule(dict(document), self.settings.package_root)
        except TimeoutError as err:
            raise PolicyEngineError(f"{where}: no answer within {self.settings.timeout_seconds}s") from err
        except aiohttp.ClientResponseError as err:
            raise PolicyEngineError(f"{where}: HTTP {err.status} {err.message}") from err
        except aiohttp.ClientConnectorCertificateError as err:
            raise PolicyEngineError(
                f"{where}: its TLS certificate is not trusted (set policy.engine.caFile to the CA "
                f"that issued it): {err}"
            ) from err
        except aiohttp.ClientConnectionError as err:
            raise PolicyEngineError(f"{where}: unreachable: {err}") from err
        except (aiohttp.ClientError, ValueError) as err:
            raise PolicyEngineError(f"{where}: unusable answer: {err}") from err
        if not isinstance(answer, Mapping) or not isinstance(answer.get("result"), Mapping):
            raise PolicyEngineError(
                f"{where}: no document at data.{self.settings.package_root}: is the policy bundle loaded?"
                f" (found {str(answer)[:200]})"
            )
        raw = collect_decision_sets(answer["result"])
        missing = sorted(set(self._expected) - set(raw))
        if missing:
            raise PolicyEngineError(
                f"{where}: the server lacks policies of the library: {', '.join(missing)}"
            )
        if not raw:
            raise PolicyEngineError(
                f"{where}: no policy with deny or warn rules under data.{self.settings.package_root}"
            )
        return raw

    async def evaluate(self, document: Mapping[str, Any]) -> Decision:
        return decide(await self.evaluate_raw(document), self._enforcement_for)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close_connection()
            self._client = None
