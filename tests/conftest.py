"""Test set-up: 8 forced CPU devices so the data-parallel (sharding) code runs in CI."""

import os

# Must happen before JAX initialises its backends, i.e. before any test imports jax.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "numba"))
