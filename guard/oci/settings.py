"""The ``registries`` section of guard's configuration: per registry host, a local mirror.

``registries: [{host: registry.example, mirror: {ociLayout: /srv/mirror}}]`` makes guard read
``registry.example/<repository>`` from the OCI image layout ``/srv/mirror/<repository>`` and never
from the network (see ``guard.oci.mirror``).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from guard.configmodel import ConfigModel
from guard.configpath import ConfigPath


class RegistryMirror(ConfigModel):
    """Where a registry's content is read from instead of the registry."""

    oci_layout: ConfigPath = Field(
        description="A directory holding one OCI image layout per repository: "
        "<ociLayout>/<repository>/{oci-layout,index.json,blobs/}. Tags are the layouts' "
        "org.opencontainers.image.ref.name annotations. Read-only; guard never contacts the registry."
    )


class RegistryHost(ConfigModel):
    """One registry host and how guard reaches it."""

    host: str = Field(description="The registry host as written in references (with its port if any).")
    mirror: RegistryMirror | None = Field(
        default=None, description="Read this registry's content from a local mirror (air-gapped clusters)."
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        from guard.oci.reference import parse_reference  # noqa: PLC0415

        try:
            ref = parse_reference(f"oci://{value}/mirror-check:v")
        except Exception as err:
            raise ValueError(f"expected a registry host such as registry.example:5000: {err}") from err
        if ref.host is None or ref.host != value.lower():
            raise ValueError(f"expected a registry host such as registry.example:5000, found {value!r}")
        return ref.host


def mirrors_of(registries: tuple[RegistryHost, ...]) -> tuple[tuple[str, str], ...]:
    """``(host, layout root)`` pairs for ``RegistryAccess.mirrors``."""
    return tuple((r.host, str(r.mirror.oci_layout)) for r in registries if r.mirror is not None)


def registry_problems(registries: tuple[RegistryHost, ...]) -> list[tuple[str, str]]:
    """``(path, problem)`` pairs: a host listed twice, a mirror directory that does not exist."""
    problems = []
    hosts = [r.host for r in registries]
    for i, entry in enumerate(registries):
        if hosts.count(entry.host) > 1:
            problems.append((f"registries.{i}.host", f"registry {entry.host!r} is listed more than once"))
        if entry.mirror is not None and not entry.mirror.oci_layout.is_dir():
            where = entry.mirror.oci_layout
            problem = f"expected a directory (one OCI layout per repository), found none at {where}"
            problems.append((f"registries.{i}.mirror.ociLayout", problem))
    return problems
