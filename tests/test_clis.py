"""The absl command lines that were argparse ones: flags parse, bad input is a usage error
(exit 1, naming the input), and one runs end to end."""

import json
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *arguments], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-m", "lipjax.cli.train_sync_expert"], "--workdir must have a value"),
        (["-m", "lipjax.cli.train_landmark_regressor", "--workdir=x"], "--data_dir must have"),
        (["-m", "lipjax.cli.offset_study", "--output=x", "--visual=mouth"], "--visual"),
        (["-m", "lipjax.cli.score_lip_sync", "extra"], "Unexpected arguments: extra"),
        (["-m", "data_pipeline.make_dummy_data", "grid", "voxceleb"], "unknown builders"),
        (["-m", "data_pipeline.build", "timit", "--manual_dir=x"], "one corpus name"),
    ],
)
def test_bad_command_lines_are_usage_errors(arguments, message):
    done = run(*arguments)
    assert done.returncode == 1 and message in done.stderr, done.stderr[-2000:]


def test_offset_study_command_line_writes_its_outputs(tiny_data_dir, tmp_path):
    done = run(
        "-m", "lipjax.cli.offset_study", "--dataset=synthetic_lips/tiny",
        f"--data_dir={tiny_data_dir}", "--split=test", f"--output={tmp_path}", "--limit=3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "offset_study_test_opening_envelope.json").read_text())
    assert summary["utterances"] == 3
    assert (tmp_path / "offset_study_test_opening_envelope.png").stat().st_size > 0
