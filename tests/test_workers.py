"""lipjax.data.workers.ordered_map: worker processes that never re-import the caller's script."""

import math
import os
import pathlib
import subprocess
import sys

import pytest

from lipjax.data import workers

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_results_come_back_in_order_and_prints_do_not_corrupt_them():
    assert list(workers.ordered_map(math.sqrt, [16, 1, 9, 4, 25], 2)) == [4, 1, 3, 2, 5]
    assert list(workers.ordered_map(print, ["printed by a worker"] * 3, 2)) == [None] * 3


def test_an_error_in_a_worker_is_raised_with_its_type_and_item():
    with pytest.raises(ValueError, match="math domain error") as error:
        list(workers.ordered_map(math.sqrt, [4, -1, 9], 2))
    assert any("on item 1" in note for note in error.value.__notes__)


def test_unpicklable_function_and_bad_worker_count_fail_at_once():
    with pytest.raises(Exception, match="lambda"):
        list(workers.ordered_map(lambda x: x, [1, 2], 2))
    with pytest.raises(ValueError, match="num_workers: expected a positive integer, got 0"):
        list(workers.ordered_map(math.sqrt, [1], 0))


def test_a_plain_script_without_main_guard_finishes(tmp_path):
    """multiprocessing's spawn workers would re-run this script and never finish."""
    script = tmp_path / "plain.py"
    script.write_text(
        "import math\n"
        "from lipjax.data import workers\n"
        "print(list(workers.ordered_map(math.sqrt, [4, 9, 16], 2)))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[2.0, 3.0, 4.0]"
