"""Test set-up: 8 forced CPU devices so the data-parallel (sharding) code runs in CI; the
session's shared builds (the tiny corpus, one trained smoke run), built once even when
pytest-xdist runs the tests on several workers (-n 2 --dist loadgroup)."""

import atexit
import dataclasses
import fcntl
import json
import os
import pathlib
import shutil
import tempfile

# Must happen before JAX initialises its backends, i.e. before any test imports jax.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "numba"))
# Every compile cached, not only those over 1 s: flax's eager init compiles one small
# program per op and parameter shape (about 85 s for the tiny training state on a 2-core
# CPU); from the cache, the other xdist worker and every subprocess load them (8 s).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    # XLA programs compiled once per session and reused: the :smoke config's training and
    # generation steps are compiled by every run of it (the shared run, the resume tests,
    # their lipjax.main and CLI subprocesses, which inherit this). Fresh each session.
    _xla_cache = tempfile.mkdtemp(prefix="lipjax-tests-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _xla_cache
    atexit.register(shutil.rmtree, _xla_cache, ignore_errors=True)

import pytest

from lipjax import configs


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups into node ids
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (--dist loadgroup) the tests of a module that share a module-scoped
    fixture (a training, a corpus build) run on one worker, which builds it once."""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None:
            continue
        scopes = {d.scope for defs in definitions.name2fixturedefs.values() for d in defs}
        if "module" in scopes:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def _built_once(tmp_path_factory, name: str, build) -> pathlib.Path:
    """The folder `build(folder)` fills, built once per test session: under pytest-xdist the
    first worker that needs it builds it while the others wait for it, then all read it."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # this session's, above the workers' own
    folder = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)  # left by a worker whose build failed
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def built_once(tmp_path_factory):
    """`built_once(name, build) -> folder`: `build(folder)` run once per test session, by
    whichever xdist worker needs it first (the others wait, then read the folder)."""
    return lambda name, build: _built_once(tmp_path_factory, name, build)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
    """synthetic_lips/tiny built once per test session for every test that only reads it
    (a build is about 15 s of CPU; tests of the builder itself build their own)."""
    from data_pipeline.synthetic_lips import SyntheticLips

    def build(folder):
        SyntheticLips(config="tiny", data_dir=str(folder), num_workers=2).download_and_prepare()

    return str(_built_once(tmp_path_factory, "tiny_tfds", build))


@dataclasses.dataclass(frozen=True)
class SmokeRun:
    """A finished experiments/synthetic.py:smoke run: its config, folder and final metrics."""

    config: object  # ml_collections.ConfigDict; tests must not change it (see fresh_config)
    workdir: pathlib.Path
    result: dict

    @property
    def pretrain(self) -> pathlib.Path:
        """The run's pretrained FlowNet (pretrain/flownet) and perceptual autoencoder."""
        return self.workdir / "pretrain"

    def fresh_config(self):
        """A new :smoke config on the same corpus whose FlowNet and perceptual networks are
        this run's pretrained ones, for tests that train a run of their own without
        pretraining again."""
        config = configs.load_experiment("synthetic", "smoke")
        config.data_dir = self.config.data_dir
        config.flownet.checkpoint = str(self.pretrain / "flownet")
        config.perceptual.checkpoint = str(self.pretrain / "perceptual")
        return config


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, tiny_data_dir) -> SmokeRun:
    """experiments/synthetic.py:smoke trained once per session on the tiny corpus, with its
    pretraining, evaluation and samples: for every test that only needs a trained run."""
    from lipjax.train import trainer

    config = configs.load_experiment("synthetic", "smoke")
    config.data_dir = tiny_data_dir

    def build(folder):
        result = trainer.train_and_evaluate(config, str(folder / "run"))
        (folder / "result.json").write_text(json.dumps(result, default=float))

    folder = _built_once(tmp_path_factory, "smoke", build)
    return SmokeRun(config, folder / "run", json.loads((folder / "result.json").read_text()))
