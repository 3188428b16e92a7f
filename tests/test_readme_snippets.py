"""The README's Python snippets run as plain scripts, without an `if __name__ == "__main__"`
guard, the way users paste them (a builder whose worker processes re-imported `__main__`
once made such a script hang)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text()
# {"README.md:LINE": code} of every ```python block.
SNIPPETS = {
    f"README.md:{README.count(chr(10), 0, match.start()) + 1}": match.group(1)
    for match in re.finditer(r"^```python\n(.*?)^```", README, re.M | re.S)
}
TIMEOUT_S = 900  # a hang guard: a tiny corpus build or a first generate() takes about 60 s


def test_the_readme_has_python_snippets():
    assert SNIPPETS, "README.md: no ```python blocks found"


@pytest.mark.parametrize("where", SNIPPETS)
def test_snippet_runs_as_a_plain_script(where, tmp_path):
    snippet = SNIPPETS[where]
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),  # this checkout's lipjax and data_pipeline
        "TFDS_DATA_DIR": str(tmp_path / "tensorflow_datasets"),  # builds go to a fresh dir
    }
    try:
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
            text=True, timeout=TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where}: snippet still running after {TIMEOUT_S} s:\n{snippet}")
    assert done.returncode == 0, f"{where}:\n{snippet}\n{done.stderr[-3000:]}"
