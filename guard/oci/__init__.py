"""guard.oci: models as OCI artifacts (CNCF ModelPack) in registries and OCI image layouts.

Modules (imported explicitly; nothing is imported here so ``guard --help`` stays fast):

- ``types``: media types, ``Descriptor``, and the ``Store`` Protocol (one repository);
- ``registry`` (with ``client``) and ``layout``: the two Store implementations;
- ``reference``: ``parse_reference("oci://HOST/REPO[:TAG][@DIGEST]" | "oci-layout:PATH[:TAG]")``;
- ``store``: ``open_store(ref, access)`` and tag resolution that reports moved tags;
- ``push`` / ``pull``: ModelPack push (digests from guard.signing's cache) and verified pull;
- ``referrers``: attach / list referrers (Referrers API or the fallback tag index);
- ``verify``: ``verify_oci(ref, verifier, store) -> OciVerification`` without fetching weights.
"""
