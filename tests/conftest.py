"""Shared pytest fixtures. Implementations live in ``guard.testing`` so users can reuse them."""

from __future__ import annotations

import os

# Machine quirks the tests must not depend on (see README, development).
os.environ.pop("REQUESTS_CA_BUNDLE", None)
os.environ.pop("CURL_CA_BUNDLE", None)
os.environ["RUST_BACKTRACE"] = "0"
