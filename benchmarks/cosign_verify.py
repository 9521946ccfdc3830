# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""Verification time of cosign-signed container images beside an OMS-signed model, in one run.

Debian's docker-registry is started on loopback and holds, as cosign stored them, the images of
``../shared/fixtures/cosign`` (the three-signer key-signed image and the keyless one, under their
``sha256-<hex>.sig`` tags), and an OMS-signed model pushed and signed by guard (the baseline).
Each contender is verified with ``guard.oci.verify.verify_oci``:

- cold: a new registry connection and a new verifier (the trust root / key loaded again), as
  the first request of a fresh webhook worker;
- warm: the same connection and verifier again, as every later request (no verdict cache here:
  the admission cache would answer those without verifying at all).

The cosign v3 bundle of the fixtures cannot sit in a registry (its image's manifest bytes are not
in the fixtures), so its row times the bundle backend alone (``verify_cosign_bundle``: DSSE,
Fulcio chain, SCT, Rekor inclusion proof, signed timestamp), without registry round trips.

Figures are medians of --repeat rounds, printed in ms and as ratios to the OMS model in the same
state (cold to cold, warm to warm). Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15, help="rounds per figure (median)")
    parser.add_argument(
        "--fixtures", type=Path, default=None, help="default: <repo>/../shared/fixtures/cosign"
    )
    args = parser.parse_args()

    from guard.oci.cosign_bundle import verify_cosign_bundle
    from guard.oci.registry import RegistryAccess, RegistryStore
    from guard.oci.verify import SIGNATURE_PREDICATES, verify_oci
    from guard.signing import KeyVerifier, SigstoreVerifier
    from guard.testing import cosign_fixtures as cf
    from guard.testing.admission_registry import publish_models
    from guard.testing.registry import RegistryServer, registry_available

    fixtures = args.fixtures or cf.fixtures_dir(REPO_ROOT)
    if not fixtures.is_dir():
        sys.exit(f"cosign fixtures not found at {fixtures}")
    reason = registry_available()
    if reason:
        sys.exit(reason)
    work = Path(tempfile.mkdtemp(prefix="guard-cosign-bench-"))
    server = RegistryServer.start(work / "registry")
    try:
        repo = "bench/cosign"
        store = RegistryStore.open(server.host, repo, RegistryAccess(), loopback=True)
        loaded: dict[str, cf.LegacyImage] = {}
        for set_name in (cf.LEGACY_KEY, cf.LEGACY_KEYLESS):
            for image in cf.legacy_images(fixtures / set_name):
                cf.load_into_registry(store, server.root / "storage", repo, image)
                loaded[image.tag] = image
        models = publish_models(server.host, work / "models", prefix="bench")
        three = loaded["multi-cosigned-alice-bob-charlie"]
        keyless_image = loaded["signed"]
        keyless_root = fixtures / cf.LEGACY_KEYLESS / "trusted_root.json"
        bundle_root = fixtures / cf.BUNDLE_V3 / "trusted_root.json"
        bundle = (fixtures / cf.BUNDLE_V3 / "bundle.sigstore.json").read_bytes()
        model_repo = models.signed.split("/", 1)[1].rsplit(":", 1)[0]

        def model_store() -> RegistryStore:
            return RegistryStore.open(server.host, model_repo, RegistryAccess(), loopback=True)

        def image_store() -> RegistryStore:
            return RegistryStore.open(server.host, repo, RegistryAccess(), loopback=True)

        def keyless_verifier() -> SigstoreVerifier:
            return SigstoreVerifier(
                issuer="https://github.com/login/oauth",
                identity="philipp.belitz@securesystems.de",
                trust_config=keyless_root,
                offline=True,
            )

        def bundle_verifier() -> SigstoreVerifier:
            return SigstoreVerifier(
                issuer="https://token.actions.githubusercontent.com",
                identity="https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml"
                "@refs/tags/v1.34.0",
                trust_config=bundle_root,
                offline=True,
            )

        model_ref = f"oci://{models.signed.rsplit(':', 1)[0]}@{models.signed_digest}"
        # charlie signed layer 2: the two layers before it are tried and refused first
        three_ref = f"oci://{server.host}/{repo}@{three.digest}"
        keyless_ref = f"oci://{server.host}/{repo}@{keyless_image.digest}"
        subject = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172"
        contenders: list[tuple[str, Callable[[], Callable[[], Any]]]] = [
            (
                "OMS model, key (baseline)",
                lambda: _bind(verify_oci, model_ref, KeyVerifier.from_file(models.public_key), model_store()),
            ),
            (
                "cosign-legacy, key, 3rd of 3 signers",
                lambda: _bind(
                    verify_oci,
                    three_ref,
                    KeyVerifier.from_file(fixtures / cf.LEGACY_KEY / "charlie.pub"),
                    image_store(),
                ),
            ),
            (
                "cosign-legacy, keyless (SET)",
                lambda: _bind(verify_oci, keyless_ref, keyless_verifier(), image_store()),
            ),
            (
                "cosign-bundle, keyless (backend only)",
                lambda: _bundle(
                    verify_cosign_bundle, bundle, bundle_verifier(), subject, SIGNATURE_PREDICATES
                ),
            ),
        ]
        print(f"docker-registry on {server.host}; median of {args.repeat} rounds; fixtures {fixtures}")
        figures: dict[str, tuple[float, float]] = {}
        for name, make in contenders:
            make()()  # check it verifies at all before timing it
            cold = timed(lambda make=make: make()(), args.repeat)  # type: ignore[misc]
            warm_fn = make()
            warm_fn()
            warm = timed(warm_fn, args.repeat)
            figures[name] = (cold, warm)
        base_cold, base_warm = next(iter(figures.values()))
        print(f"{'contender':42} {'cold ms':>9} {'warm ms':>9} {'cold x OMS':>11} {'warm x OMS':>11}")
        for name, (cold, warm) in figures.items():
            print(f"{name:42} {cold:9.2f} {warm:9.2f} {cold / base_cold:11.2f} {warm / base_warm:11.2f}")
    finally:
        server.stop()


def _bind(fn: Callable[..., Any], ref: str, verifier: Any, store: Any) -> Callable[[], Any]:
    return lambda: fn(ref, verifier, store)


def _bundle(
    fn: Callable[..., Any], bundle: bytes, verifier: Any, subject: str, predicates: Any
) -> Callable[[], Any]:
    return lambda: fn(bundle, verifier, subject, predicates, "fixture")


if __name__ == "__main__":
    main()
