"""lipjax.data.datasets: one way to open a built dataset, and errors that say how to build it."""

import importlib.util
import pathlib
import shlex
import subprocess
import sys

import pytest

from lipjax.data import datasets

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built_by_the_error_command(tmp_path_factory) -> tuple[pathlib.Path, str]:
    """(data dir, error message): synthetic_lips/tiny opened before it is built, then built
    by running the command that the error names, exactly as printed."""
    data_dir = tmp_path_factory.mktemp("datasets") / "tfds"
    with pytest.raises(FileNotFoundError) as error:
        datasets.open_split("synthetic_lips/tiny", "train", str(data_dir))
    message = str(error.value)
    command = shlex.split(message.splitlines()[-1])
    assert command[:3] == ["python", "-m", "data_pipeline.synthetic_lips"], message
    done = subprocess.run(
        [sys.executable, *command[1:]], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return data_dir, message


def test_unbuilt_dataset_error_names_dataset_data_dir_and_a_command_that_builds_it(
    built_by_the_error_command,
):
    data_dir, message = built_by_the_error_command
    assert "'synthetic_lips/tiny'" in message and f"data dir {data_dir} " in message
    assert message.splitlines()[-1].strip() == (
        f"python -m data_pipeline.synthetic_lips build --config=tiny --data_dir={data_dir}"
    )
    assert len(datasets.open_split("synthetic_lips/tiny", "train", str(data_dir))) == 16


def test_real_corpus_command_names_an_existing_builder_cli():
    command = datasets.build_command("grid/default", "/data")
    assert command == (
        "python -m data_pipeline.build grid --manual_dir=DIR_OF_THE_DOWNLOAD "
        "--config=default --data_dir=/data"
    )
    assert importlib.util.find_spec("data_pipeline.build") is not None
    from data_pipeline import build

    assert {"grid", "lrw", "ldc"} <= set(build.BUILDERS)


def test_unknown_config_lists_the_configs(tmp_path):
    with pytest.raises(ValueError, match=r"dataset: unknown 'synthetic_lips/huge'.*'tiny'"):
        datasets.open_builder("synthetic_lips/huge", str(tmp_path))


def test_unknown_split_names_the_splits(built_by_the_error_command):
    data_dir, _ = built_by_the_error_command
    with pytest.raises(ValueError, match=r"split: synthetic_lips/tiny has .*'test'.*not 'dev'"):
        datasets.open_split("synthetic_lips/tiny", "dev", str(data_dir))


def test_unbuilt_builder_can_be_opened_to_build_it(tmp_path):
    builder = datasets.open_builder(
        "synthetic_lips/tiny", str(tmp_path), prepared=False, num_workers=1
    )
    assert not builder.is_prepared() and str(builder.data_dir_root) == str(tmp_path)
