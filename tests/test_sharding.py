"""Multi-host initialisation: which settings start jax.distributed, and clear errors."""

import pathlib
import socket
import subprocess
import sys

import pytest

from lipjax import sharding

REPO = pathlib.Path(__file__).resolve().parents[1]
ADDRESS = "10.0.0.1:1234"


def test_no_settings_is_a_single_host_run():
    assert sharding.distributed_settings(environ={}) is None


def test_slurm_alone_lets_jax_detect_everything():
    assert sharding.distributed_settings(environ={"SLURM_JOB_ID": "7"}) == {}


def test_all_three_from_arguments_or_environment():
    expected = {"coordinator_address": ADDRESS, "num_processes": 2, "process_id": 1}
    assert sharding.distributed_settings(ADDRESS, 2, 1, environ={}) == expected
    environ = {
        "JAX_COORDINATOR_ADDRESS": ADDRESS,
        "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": "1",
    }
    assert sharding.distributed_settings(environ=environ) == expected
    # An argument wins over its variable; the others still come from the environment.
    assert sharding.distributed_settings(process_id=0, environ=environ)["process_id"] == 0


def test_the_address_alone_names_what_is_missing():
    """JAX itself says only "Number of processes must be defined"."""
    with pytest.raises(ValueError) as error:
        sharding.distributed_settings(environ={"JAX_COORDINATOR_ADDRESS": ADDRESS})
    message = str(error.value)
    assert "missing: num_processes (--num_processes or $JAX_NUM_PROCESSES), " in message
    assert "process_id (--process_id or $JAX_PROCESS_ID)" in message
    assert f"given: coordinator_address={ADDRESS} (from JAX_COORDINATOR_ADDRESS)" in message


@pytest.mark.parametrize(
    "arguments, missing",
    [
        ({"num_processes": 2, "process_id": 0}, "coordinator_address"),
        ({"coordinator_address": ADDRESS, "process_id": 0}, "num_processes"),
        ({"coordinator_address": ADDRESS, "num_processes": 2}, "process_id"),
    ],
)
def test_any_partial_set_is_refused_outside_slurm(arguments, missing):
    with pytest.raises(ValueError, match=f"missing: {missing} "):
        sharding.distributed_settings(**arguments, environ={})


def test_under_slurm_a_partial_set_is_completed_by_jax():
    settings = sharding.distributed_settings(ADDRESS, environ={"SLURM_JOB_ID": "7"})
    assert settings == {"coordinator_address": ADDRESS}


@pytest.mark.parametrize(
    "arguments, environ, message",
    [
        ({"num_processes": 2, "process_id": 2}, {}, "process_id: expected 0..num_processes - 1"),
        ({"num_processes": 0, "process_id": 0}, {}, "num_processes: expected >= 1"),
        ({"process_id": 0}, {"JAX_NUM_PROCESSES": "two"}, "from JAX_NUM_PROCESSES"),
        ({"num_processes": 2, "process_id": 0, "coordinator_address": "node0"}, {}, "host:port"),
    ],
)
def test_bad_values_are_refused(arguments, environ, message):
    arguments.setdefault("coordinator_address", ADDRESS)
    with pytest.raises(ValueError, match=message):
        sharding.distributed_settings(**arguments, environ=environ)


def test_initialize_distributed_does_nothing_on_one_host(monkeypatch):
    for variable in (*sharding.DISTRIBUTED_SETTINGS.values(), *sharding.CLUSTER_VARIABLES):
        monkeypatch.delenv(variable, raising=False)
    assert sharding.initialize_distributed() is False


def test_one_process_job_starts_with_explicit_settings():
    """A real jax.distributed runtime of one process, coordinator on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import jax; from lipjax import sharding; "
        f"joined = sharding.initialize_distributed('127.0.0.1:{port}', 1, 0); "
        "print(joined, jax.process_count(), jax.process_index()); "
        "jax.distributed.shutdown()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "1", "0"]


def test_main_refuses_a_partial_launch_before_training(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lipjax.main",
            "--config=experiments/synthetic.py",
            f"--workdir={tmp_path / 'run'}",
            "--num_processes=2",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert done.returncode != 0
    assert "missing: coordinator_address" in done.stderr
    assert not (tmp_path / "run").exists()
