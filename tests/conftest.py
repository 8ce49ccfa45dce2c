"""Shared pytest configuration for the whole test suite."""

from __future__ import annotations

import os

from hypothesis import settings

# "ci": bounded and reproducible; "dev": the default, still modest so the
# suite stays fast. Pick with HYPOTHESIS_PROFILE, or set CI to get "ci".
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
