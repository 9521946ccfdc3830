"""Fixtures of tests/image: the built image (GUARD_IMAGE, set by make image-test) mounted by
buildah, as a ``guard.testing.image_rootfs.Image``."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.testing.image_rootfs import Image

IMAGE = os.environ.get("GUARD_IMAGE", "")
STORAGE = ["--storage-driver", os.environ.get("STORAGE_DRIVER", "vfs")]


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.skip("running the image's root filesystem needs root (mount namespaces, chroot)")
    if not IMAGE:
        pytest.skip("GUARD_IMAGE is not set (make image-test builds and sets it)")
    inspect = subprocess.run(
        ["buildah", *STORAGE, "inspect", "--type", "image", IMAGE], capture_output=True, text=True, check=True
    )
    config = json.loads(inspect.stdout)["OCIv1"]["config"]
    container = subprocess.run(
        ["buildah", *STORAGE, "from", "--pull=never", IMAGE], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        root = subprocess.run(
            ["buildah", *STORAGE, "mount", container], capture_output=True, text=True, check=True
        ).stdout.strip()
        yield Image(Path(root), config)
    finally:
        subprocess.run(["buildah", *STORAGE, "rm", container], capture_output=True, check=False)
