"""Test set-up: 8 forced CPU devices so the data-parallel (sharding) code runs in CI."""

import os

# Must happen before JAX initialises its backends, i.e. before any test imports jax.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "numba"))

import pytest


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
    """synthetic_lips/tiny built once per test session for every test that only reads it
    (a build is about 15 s of CPU; tests of the builder itself build their own)."""
    from data_pipeline.synthetic_lips import SyntheticLips

    directory = tmp_path_factory.mktemp("tiny_tfds")
    SyntheticLips(config="tiny", data_dir=str(directory), num_workers=2).download_and_prepare()
    return str(directory)
