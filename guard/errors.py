"""One error tree for guard.

The library only raises; only ``guard.cli`` (and ``webhook``) turn errors into exit codes or
HTTP answers. Every subclass names its cause so that callers can tell tampering from
misconfiguration from a registry that is down. Messages say what was expected and what was
found.

Exit codes (``GuardError.exit_code``): 0 ok, 1 verification or policy failure, 2 usage or
configuration error, 3 infrastructure error; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class GuardError(Exception):
    """Base of every error guard raises on purpose."""

    exit_code: int = EXIT_USAGE


# --- usage, input and configuration (exit 2) -------------------------------------------------


class UsageError(GuardError):
    """The caller asked for something that cannot be done as asked (bad option, missing path)."""

    exit_code = EXIT_USAGE


class ConfigError(GuardError):
    """A configuration file or value is invalid. The message names the path of the bad field."""

    exit_code = EXIT_USAGE


class ModelDirectoryError(UsageError):
    """The model directory is missing, empty, unreadable or holds a refused symlink."""


class KeyMaterialError(UsageError):
    """A key or certificate given by the user cannot be used (wrong type, encrypted without a
    passphrase, malformed PEM)."""


class PolicyLibraryError(UsageError):
    """A Rego policy library cannot be used as given: a syntax error, a package that does not
    match its path, a policy without its tests or samples."""


class ReportError(UsageError):
    """``guard report`` cannot do as asked: a scan result it cannot read, a format it cannot write
    here (PDF without Chromium), a bundle directory it cannot use."""


# --- verification and policy failures (exit 1) -----------------------------------------------


class VerificationError(GuardError):
    """What was checked is not what was trusted. Always exit 1."""

    exit_code = EXIT_FAILED


class UntrustedContentError(VerificationError):
    """Bytes someone else controls (a manifest, an index, a descriptor, a bundle, a statement that
    anyone with push access to a repository can write) are not what they must be: not JSON, too
    large, nested too deeply, a field of the wrong type. A verification failure of that item,
    never "infrastructure": a fail-open rule does not cover it, and the caller tries the next item.
    ``where`` names the item (and the field when there is one)."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


class BundleFormatError(UntrustedContentError):
    """A signature or attestation file is not what it must be (not JSON, not a Sigstore bundle,
    another predicate type...). ``field`` names the offending field when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, where=field)
        self.field = field


class IntegrityError(VerificationError):
    """The bytes differ from the signed ones. Lists the files that differ, by name."""

    def __init__(
        self,
        message: str,
        *,
        added: Sequence[str] = (),
        removed: Sequence[str] = (),
        changed: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.added = tuple(added)
        self.removed = tuple(removed)
        self.changed = tuple(changed)


class SignatureMismatch(VerificationError):
    """The signature does not verify with the given key or certificate."""


class IdentityMismatch(VerificationError):
    """The signer's identity or OIDC issuer is not the expected one."""

    def __init__(self, message: str, *, expected: str | None = None, found: str | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class TransparencyLogError(VerificationError):
    """The transparency-log evidence (inclusion proof, checkpoint, SET) does not hold."""


class AttestationError(VerificationError):
    """An attestation is missing, invalid against its schema, or bound to another subject."""


class PolicyViolation(VerificationError):
    """Raised only at the CLI edge to carry a deny decision to an exit code; the engine itself
    returns violations as data."""


class UntrustedCertificate(VerificationError):
    """The signing certificate does not chain to a trusted root, was not valid when the signature
    was made, or lacks a valid certificate-transparency proof (SCT)."""


class UnsafeArtifactError(VerificationError):
    """An OCI artifact tries to write outside the target directory (``../`` or absolute paths,
    links, devices) or is otherwise shaped to attack the client. ``path`` names the entry."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


# --- infrastructure (exit 3) -----------------------------------------------------------------


class InfrastructureError(GuardError):
    """Something guard depends on failed: a registry, a policy server, the disk, the network."""

    exit_code = EXIT_INFRA


class RegistryError(InfrastructureError):
    """An OCI registry (or layout store) could not answer as needed."""


class RegistryAuthError(RegistryError):
    """The registry refused our credentials, or asked for some and we had none."""


class RefusedTargetError(RegistryError):
    """guard refused, on purpose, to connect where a registry pointed it (a redirect, a token
    realm, an upload location, an address such as cloud metadata). The message names the rule
    that refused it and the setting that would allow it. Infrastructure (exit 3), never a pass."""


class AnswerTooLargeError(RegistryError):
    """A registry's answer is over the cap guard reads for it (``limit`` bytes). Infrastructure by
    default; a caller whose answer lists what pushers wrote (a referrers listing) treats it as
    untrusted content."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class RegistryTlsError(RegistryError):
    """The registry's TLS certificate did not verify (a CA guard does not trust, another name, an
    expired certificate). Something answered, so this is no outage: a fail-open rule does not
    cover it (a wrong CA bundle would otherwise let every pod through unverified)."""


class RegistryAnswerError(RegistryError):
    """The registry answered a request with an error that is neither its own failure (5xx) nor
    its being busy (408, 429): a 4xx other than 401, 403 and 404 (``status``). It is up, so a
    fail-open rule does not cover it."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(RegistryError):
    """The registry has no such repository, tag, manifest or blob."""


class ReferenceChangedError(RegistryError):
    """A tag pointed at another manifest when fetched than when it was resolved (it moved)."""

    def __init__(self, message: str, *, expected: str, found: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class PolicyEngineError(InfrastructureError):
    """The policy engine failed to load a bundle or evaluate a query (not a deny)."""


class DeadlineExceeded(InfrastructureError):
    """A deadline passed before the work was done."""


class LayoutNotFoundError(NotFoundError, UsageError):
    """A local OCI image layout the user named (``oci-layout:PATH``) does not exist, is not a
    layout, or has no such tag or manifest: the user's mistake (exit 2), not a failure to retry.
    Still a NotFoundError, so code probing a store for an optional tag catches it as before; a
    registry's "not found" stays NotFoundError (exit 3)."""

    exit_code = EXIT_USAGE
