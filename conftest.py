"""Hypothesis profiles for tests/ and property_tests/ (chosen with HYPOTHESIS_PROFILE).

* ``ci``: derandomized and bounded, so CI is deterministic and fast (scripts/test's default).
* ``dev``: a little more than ``ci``, random, for local runs.
* ``fuzz``: 10,000 examples per property, for long hunts.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=150, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
