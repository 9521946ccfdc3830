"""The policy engine seam: one Protocol, one implementation per file, chosen by config.

- ``guard.policy.embedded.EmbeddedEngine``: regorus in-process (default).
- ``guard.policy.opa.OpaEngine``: an OPA server's Data API.

Both load the same library and return the same ``Decision`` (built by ``guard.policy.decision``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from guard.policy.settings import EmbeddedEngineSettings, OpaEngineSettings, PolicySettings

if TYPE_CHECKING:
    from guard.policy.decision import Decision
    from guard.policy.library import PolicyLibrary


class PolicyEngine(Protocol):
    """Evaluates the whole library on one input document."""

    async def evaluate(self, document: Mapping[str, Any]) -> Decision:
        """The decision for ``document`` (``policies/input.schema.json``). Raises
        ``PolicyEngineError`` when the engine cannot answer; violations are data, not errors."""
        ...

    async def aclose(self) -> None:
        """Release connections (a no-op for the embedded engine)."""
        ...


def check_enforcement_keys(settings: PolicySettings, library: PolicyLibrary) -> None:
    """Every ``policy.enforcement`` key must name a bundle or policy of the library: a typo
    (``gpu.fitt: deny``) would otherwise leave that policy on the default action unnoticed."""
    from guard.errors import ConfigError  # noqa: PLC0415

    policies = {p.name for p in library.policies}
    bundles = {name.split(".", 1)[0] for name in policies}
    unknown = sorted(key for key in settings.enforcement if key not in policies and key not in bundles)
    if unknown:
        raise ConfigError(
            f"policy.enforcement: {', '.join(repr(k) for k in unknown)} names no bundle or policy of "
            f"the library at {library.root} (bundles: {', '.join(sorted(bundles))}; policies: "
            f"{', '.join(sorted(policies))})"
        )


def make_engine(settings: PolicySettings, library: PolicyLibrary | None = None) -> PolicyEngine:
    """The engine the config chooses. The embedded engine loads ``library`` (default:
    ``settings.directory``, else the shipped library); the OPA engine checks that the server
    answers for every policy of ``library`` or of ``settings.directory`` when one is given."""
    from guard.policy.library import load_library  # noqa: PLC0415

    engine = settings.engine
    if isinstance(engine, EmbeddedEngineSettings):
        from guard.policy.embedded import EmbeddedEngine  # noqa: PLC0415

        library = library or load_library(settings.directory)
        check_enforcement_keys(settings, library)
        return EmbeddedEngine(library, settings.enforcement_for, cache_size=engine.decision_cache_size)
    if isinstance(engine, OpaEngineSettings):
        from guard.policy.opa import OpaEngine  # noqa: PLC0415

        # The server holds the bundle; a local library (given, or configured) only tells which
        # policies the server must answer for.
        if library is None and settings.directory is not None:
            library = load_library(settings.directory)
        if library is not None:
            check_enforcement_keys(settings, library)
        expected = [p.name for p in library.policies] if library else []
        return OpaEngine(engine, settings.enforcement_for, expected=expected)
    raise AssertionError(f"unhandled engine settings {engine!r}")  # pragma: no cover
