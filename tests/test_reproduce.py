"""lipjax.eval.reproduce: the tables' rank statistics, the markdown, and a two-experiment run."""

import json
import pathlib

import pytest

from lipjax import configs
from lipjax.eval import reproduce


def test_kendall_tau_of_known_orderings():
    assert reproduce.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert reproduce.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # One swapped pair of six: (5 - 1) / 6.
    assert reproduce.kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)


def test_every_experiment_config_loads_with_its_synthetic_variant():
    for name in reproduce.EXPERIMENTS:
        config = configs.load_experiment(name, "synthetic")
        assert config.dataset.startswith("synthetic_lips"), name
    with pytest.raises(FileNotFoundError, match="table9_z"):
        configs.load_experiment("table9_z", "synthetic")


def _record(lmd: float, ssim: float) -> dict:
    rows = {
        "model": {"lmd": lmd, "ssim": ssim, "psnr": 25.0, "cpbd": 0.3},
        "static": {"lmd": 2.5, "ssim": 0.75, "psnr": 28.0, "cpbd": 0.45},
        "ground_truth": {"cpbd": 0.4},
    }
    return {"steps": 10, "split": "test", "losses": "pixel", "train_minutes": 3.0, "rows": rows}


def test_markdown_has_every_row_the_paper_columns_and_keeps_the_discussion():
    records = {"table2_a": _record(2.0, 0.6), "table2_e": _record(1.5, 0.7)}
    settings = {
        "command": "python -m lipjax.cli.reproduce --workdir=runs/tables --steps=10",
        "dataset": "synthetic_lips/small",
        "split": "test",
        "variant": "synthetic",
        "batch_size": 8,
        "steps": 10,
        "seed": 0,
        "machine": "2 x cpu",
        "date": "2026-11-24",
    }
    text = reproduce.render(records, settings, "Our words stay.")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table[2:]] == [
        "| static",
        "| ground truth",
        "| table2_a",
        "| table2_e",
    ]
    assert "| 1.500 |" in table[-1] and "| 1.18 |" not in text  # paper LMD printed to 3 places
    assert "1.180" in table[-1]
    # The paper ranks (e) above (a) on LMD, as do these rows: tau = +1.
    assert "Kendall's tau with the paper's +1.00 over 2 rows" in text
    assert text.rstrip().endswith("Our words stay.")
    assert "batch 8, 10 steps, seed 0" in text


def test_two_experiments_train_evaluate_and_fill_the_results(tmp_path, tiny_data_dir):
    """Table 2 (h) (no FlowNet: two-stream D, no correlation) and Chung's baseline (no
    pretrained network) at their smoke sizes: trained, evaluated on the test split, only the
    perceptual autoencoder pretrained, once, RESULTS.md written; a second call trains
    nothing again."""
    results = tmp_path / "RESULTS.md"
    results.write_text("old\n\n## Discussion\n\nKept by the rewrite.\n")
    kwargs = {
        "steps": 2,
        "names": ("table2_h", "table3_chung"),
        "variant": "smoke",
        "data_dir": tiny_data_dir,
        "results": results,
        "sync": False,
        "records_dir": tmp_path / "records",
    }
    records = reproduce.reproduce(tmp_path / "runs", **kwargs)
    assert set(records) == {"table2_h", "table3_chung"}
    for record in records.values():
        assert record["steps"] == 2 and record["num_clips"] > 0
        assert record["rows"]["model"]["lmd"] > 0 and record["rows"]["static"]["lmd"] > 0
    assert records["table2_h"]["losses"] == "pixel, perceptual, gen (two)"
    assert records["table3_chung"]["losses"] == "chung, pixel"
    assert (tmp_path / "runs" / "pretrain" / "perceptual").is_dir()
    assert not (tmp_path / "runs" / "pretrain" / "flownet").exists()
    assert not (tmp_path / "runs" / "table2_h" / "pretrain").exists()
    text = results.read_text()
    assert "| table2_h |" in text and "| table3_chung |" in text and "| static |" in text
    assert "Kept by the rewrite." in text
    saved = json.loads((tmp_path / "runs" / "table3_chung" / "reproduce.json").read_text())
    mtime = (tmp_path / "runs" / "table3_chung" / "reproduce.json").stat().st_mtime
    again = reproduce.reproduce(tmp_path / "runs", **kwargs)
    assert again["table3_chung"] == saved
    assert (tmp_path / "runs" / "table3_chung" / "reproduce.json").stat().st_mtime == mtime
    committed = json.loads((tmp_path / "records" / "table2_h.json").read_text())
    assert committed == records["table2_h"]
    assert set(committed["pretraining"]) == {"perceptual"}  # (h) uses no FlowNet
    assert committed["variant"] == "smoke"
    assert records["table3_chung"]["pretraining"] == {}  # Chung: no pretrained network


def test_committed_records_survive_a_lost_workdir(tmp_path, tiny_data_dir, monkeypatch):
    """The table is filled over several sessions: with the workdir gone, a rerun pretrains
    again (deterministically: the same weight fingerprint) and reuses the committed record
    instead of training again; a record of another pretraining is not reused."""
    from lipjax.train import trainer

    kwargs = {
        "steps": 2,
        "names": ("table2_h",),
        "variant": "smoke",
        "data_dir": tiny_data_dir,
        "results": tmp_path / "RESULTS.md",
        "sync": False,
        "records_dir": tmp_path / "records",
    }
    first = reproduce.reproduce(tmp_path / "lost", **kwargs)["table2_h"]

    def no_training(config, workdir):
        raise AssertionError("a committed experiment was trained again")

    monkeypatch.setattr(trainer, "train_and_evaluate", no_training)
    assert reproduce.reproduce(tmp_path / "new", **kwargs)["table2_h"] == first
    assert "| table2_h |" in (tmp_path / "RESULTS.md").read_text()

    other = {**first, "pretraining": {"perceptual": "0000000000000000"}}
    (tmp_path / "records" / "table2_h.json").write_text(json.dumps(other))
    expected = {
        "steps": 2,
        "split": "test",
        "variant": "smoke",
        "pretraining": first["pretraining"],
    }
    assert (
        reproduce.find_record("table2_h", tmp_path / "gone", tmp_path / "records", expected) is None
    )
    assert (
        reproduce.find_record("table2_h", tmp_path / "new", tmp_path / "records", expected) == first
    )
    assert (
        reproduce.find_record(
            "table2_h", tmp_path / "gone", tmp_path / "records", {**expected, "steps": 3}
        )
        is None
    )


def test_fingerprint_names_the_weights():
    import numpy as np

    tree = {"conv": {"kernel": np.ones((3, 3), np.float32), "bias": np.zeros(3, np.float32)}}
    same = {"conv": {"bias": np.zeros(3, np.float32), "kernel": np.ones((3, 3), np.float32)}}
    changed = {
        "conv": {"kernel": np.ones((3, 3), np.float32), "bias": np.full(3, 1e-7, np.float32)}
    }
    assert reproduce.fingerprint(tree) == reproduce.fingerprint(same)
    assert reproduce.fingerprint(tree) != reproduce.fingerprint(changed)
    assert len(reproduce.fingerprint(tree)) == 16


def test_a_stopped_training_stops_the_reproduction_unevaluated(tmp_path, monkeypatch):
    """SIGTERM makes train_and_evaluate return early: nothing is evaluated or recorded, the
    experiments after it are not started, and the training minutes of the interrupted
    invocation count towards the finished run."""
    from lipjax.eval import report
    from lipjax.train import trainer

    calls = []

    def stopped_training(config, workdir):
        calls.append(pathlib.Path(workdir).name)
        pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
        return {"step": 3}

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a stopped run was evaluated")

    monkeypatch.setattr(trainer, "train_and_evaluate", stopped_training)
    monkeypatch.setattr(report, "run", no_evaluation)
    config = configs.load_experiment("table2_a", "smoke")
    config.num_steps = 10
    assert reproduce.run_experiment("table2_a", config, tmp_path, "test", False) is None
    assert calls == ["table2_a"]
    assert not (tmp_path / "table2_a" / "reproduce.json").exists()
    first_minutes = json.loads((tmp_path / "table2_a" / "train_minutes.json").read_text())
    assert first_minutes >= 0

    summary = {"rows": {"model": {"lmd": 1.0}}, "num_clips": 4}
    monkeypatch.setattr(trainer, "train_and_evaluate", lambda config, workdir: {"step": 10})
    monkeypatch.setattr(report, "run", lambda *args, **kwargs: summary)
    record = reproduce.run_experiment("table2_a", config, tmp_path, "test", False)
    assert record["rows"] == summary["rows"] and record["steps"] == 10
    assert record["train_minutes"] >= first_minutes


def test_discussion_edited_while_the_experiments_run_is_kept(tmp_path, tiny_data_dir, monkeypatch):
    """The table takes hours: words written under "## Discussion" between two experiments
    must survive the rewrite after the next one."""
    from lipjax.eval import report
    from lipjax.train import trainer

    results = tmp_path / "RESULTS.md"
    results.write_text("old\n\n## Discussion\n\nWritten before the run.\n")
    evaluated = []

    def evaluation(config, checkpoint, split, out_dir, **kwargs):
        evaluated.append(pathlib.Path(checkpoint).parent.name)
        if len(evaluated) == 2:  # the first row is written: a person edits the discussion
            text = results.read_text()
            assert "| table3_chung |" in text
            results.write_text(text.replace("Written before the run.", "Edited mid-run."))
        return {"rows": {"model": {"lmd": float(len(evaluated))}}, "num_clips": 4}

    monkeypatch.setattr(trainer, "train_and_evaluate", lambda config, workdir: {"step": 2})
    monkeypatch.setattr(report, "run", evaluation)
    reproduce.reproduce(
        tmp_path / "runs",
        steps=2,
        names=("table3_chung", "table3_vondrick"),
        variant="smoke",
        data_dir=tiny_data_dir,
        results=results,
        sync=False,
        records_dir=tmp_path / "records",
    )
    assert evaluated == ["table3_chung", "table3_vondrick"]
    text = results.read_text()
    assert "| table3_vondrick |" in text
    assert text.rstrip().endswith("Edited mid-run.")
