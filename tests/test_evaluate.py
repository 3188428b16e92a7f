"""lipjax.eval.evaluation (model / static / ground-truth rows) and the lipjax.eval.report tool."""

from __future__ import annotations

import csv
import json
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import scipy.ndimage

from lipjax import configs
from lipjax.eval import evaluation, metrics, report
from lipjax.train import train_step


def _clips(batch_size: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=(batch_size, 16, 64, 64, 3))
    smooth = scipy.ndimage.gaussian_filter(noise, (0, 1, 2, 2, 0))
    return np.clip(smooth / smooth.std() * 0.4, -1, 1).astype(np.float32)


def _batches(sizes=(3, 3), padding: int = 1):
    """(batch, mask) pairs like the eval iterator's: the last batch ends in padding rows."""
    out = []
    for index, size in enumerate(sizes):
        video = _clips(size, index)
        mask = np.ones(size, bool)
        if index == len(sizes) - 1 and padding:
            mask[-padding:] = False
        out.append(
            (
                {
                    "video": video,
                    "identity": video[:, 0],
                    "audio": np.zeros((size, 64, 128, 1), np.float32),
                    "utterance_index": np.arange(size) + 10 * index,
                    "start_frame": np.zeros(size, np.int32),
                    "speaker_id": np.full(size, 7 + index),
                },
                mask,
            )
        )
    return out


def _landmarks(clips: np.ndarray) -> np.ndarray:
    """A stand-in landmark model: the inner lower lip (points 16..19) moves down with each
    frame's mean colour, so the mouth opens and closes with it."""
    level = np.asarray(clips).mean(axis=(-3, -2, -1))[..., None, None]
    base = np.stack([np.linspace(0, 19, 20), np.zeros(20)], axis=-1)
    return base + 1000 * level * np.array([0.0, 1.0]) * (np.arange(20) >= 16)[:, None]


def _sync(clips, audio, audio_start=0):
    del audio, audio_start
    level = np.asarray(clips, np.float64).mean(axis=(1, 2, 3, 4))
    return {"lse_d": 1 + level, "lse_c": 2 + level, "offset": np.full(len(clips), 3)}


def test_a_perfect_generator_against_static_and_ground_truth():
    batches = _batches()
    result = evaluation.evaluate(lambda b: b["video"], batches, _landmarks, sync=_sync)
    assert result.num_clips == 5  # 3 + 3 rows, one padding row dropped
    assert result.model["lmd"] == 0.0
    assert result.model["psnr"] == metrics.PSNR_CAP_DB
    assert result.model["ssim"] == pytest.approx(1.0)
    assert result.model["cpbd"] == pytest.approx(result.ground_truth["cpbd"])
    assert set(result.ground_truth) == {"cpbd", "lse_d", "lse_c", "sync_offset"}
    assert result.ground_truth["sync_offset"] == 3

    # The static row by hand: the first frame repeated, scored against the clip.
    videos = np.concatenate([b["video"] for b, _ in batches])[:5]
    static = np.repeat(videos[:, :1], 16, axis=1)
    real_u8, static_u8 = metrics.to_uint8(videos), metrics.to_uint8(static)
    expected_lmd = metrics.landmark_distance(_landmarks(videos), _landmarks(static)).mean()
    assert result.static["lmd"] == pytest.approx(expected_lmd)
    assert result.model["opening_corr"] == pytest.approx(1.0)
    assert result.static["opening_corr"] == 0.0  # a still mouth
    assert result.static["ssim"] == pytest.approx(metrics.ssim(real_u8, static_u8))
    assert result.static["cpbd"] == pytest.approx(metrics.cpbd(static_u8[:, 0]))
    assert result.static["lse_d"] == pytest.approx(np.mean(_sync(static, None)["lse_d"]))

    np.testing.assert_array_equal(result.per_clip["speaker_id"], [7, 7, 7, 8, 8])
    np.testing.assert_array_equal(result.per_clip["utterance_index"], [0, 1, 2, 10, 11])
    assert result.per_clip["model_lmd"].shape == (5,)
    scalars = result.scalars()
    for key in ("lmd", "static_lmd", "psnr", "static_ssim", "gt_cpbd", "gt_lse_c"):
        assert key in scalars
    assert scalars["lmd_vs_static"] == 0.0
    assert result.samples["real"].shape == (4, 16, 64, 64, 3)


def test_evaluation_options_and_an_empty_split():
    result = evaluation.evaluate(
        lambda b: b["video"] * 0.5, _batches(), _landmarks, sharpness=False, max_batches=1
    )
    assert result.num_clips == 3
    assert "cpbd" not in result.model and "lse_d" not in result.model
    assert result.ground_truth == {}
    assert result.model["lmd"] > 0
    # Half the contrast, the same rhythm: the mouth opens less but in step (float32 means).
    assert result.model["opening_corr"] == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="no 16-frame windows"):
        evaluation.evaluate(lambda b: b["video"], [], _landmarks)


def test_image_metrics_come_from_the_device_and_equal_the_host_metrics():
    from lipjax.eval import device_metrics

    def half(batch):
        return batch["video"] * 0.5

    compiled = getattr(device_metrics.clip_metrics, "_cache_size", lambda: None)
    result = evaluation.evaluate(half, _batches(padding=1), None, sharpness=False)
    programs = compiled()
    # Another split whose last batch has more padding rows: no new program.
    evaluation.evaluate(half, _batches(padding=2), None, sharpness=False)
    assert compiled() == programs

    videos = np.concatenate([b["video"] for b, _ in _batches()])[:5]
    real_u8 = metrics.to_uint8(videos)
    rows = {"model": metrics.to_uint8(videos * 0.5), "static": real_u8[:, :1].repeat(16, 1)}
    cap = metrics.PSNR_CAP_DB
    for row, clip_u8 in rows.items():
        expected = {
            "psnr": np.minimum(metrics.psnr_per_frame(real_u8, clip_u8), cap).mean(axis=1),
            "ssim": metrics.ssim_per_frame(real_u8, clip_u8).mean(axis=1),
            "psnr_paper": np.minimum(metrics.psnr_per_frame_paper(real_u8, clip_u8), cap).mean(1),
            "ssim_paper": metrics.ssim_per_frame_paper(real_u8, clip_u8).mean(axis=1),
        }
        for name, values in expected.items():
            atol = 1e-4 if name.startswith("psnr") else 1e-6
            got = result.per_clip[f"{row}_{name}"]
            assert got.dtype == np.float64
            np.testing.assert_allclose(got, values, rtol=0, atol=atol, err_msg=f"{row} {name}")


# The command-line tool on a tiny corpus and an untrained generator.


@pytest.fixture(scope="module")
def data_dir(tiny_data_dir):
    return tiny_data_dir


def _config(data_dir):
    config = configs.smoke(configs.cpu_sized(configs.base_config()))
    config.data_dir = data_dir
    return config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    """A run folder as training leaves it: config.json and a checkpoint of step 3."""
    return _write_run(_config(data_dir), tmp_path_factory.mktemp("run"))


def _write_run(config, run):
    """config.json and an untrained generator's checkpoint of step 3 in `run`."""
    (run / "config.json").write_text(config.to_json_best_effort(indent=2))
    networks = train_step.build_networks(config)
    inputs = train_step.example_inputs(1)
    variables = networks.generator.init(
        jax.random.key(0), inputs["audio"], inputs["identity"], train=False
    )
    state = {
        "step": np.int32(3),
        "params": {"generator": variables["params"]},
        "batch_stats": {"generator": variables["batch_stats"]},
    }
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(run / "checkpoints" / "3" / "state", state)
    checkpointer.wait_until_finished()
    return run


def test_the_tool_writes_tables_plots_and_samples(run_dir, tmp_path):
    config = report.config_from_json(report.find_run_config(run_dir / "checkpoints"))
    assert config.model.generator_residual_blocks == 1
    summary = report.run(config, str(run_dir), "test", tmp_path, max_batches=1, num_samples=2)
    rows = summary["rows"]
    assert summary["num_clips"] == 8
    for metric in ("lmd", "opening_corr", "psnr", "ssim", "cpbd", "lse_d", "lse_c", "sync_offset"):
        assert np.isfinite(rows["model"][metric]) and np.isfinite(rows["static"][metric])
    assert "lmd" not in rows["ground_truth"] and "lse_d" in rows["ground_truth"]
    for name in ("results.md", "results.csv", "per_speaker.csv", "per_clip.csv",
                 "metric_distributions.png", "lmd_per_speaker.png", "samples.png"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name
    assert len(list((tmp_path / "samples").glob("*.mp4"))) == 2
    with (tmp_path / "results.csv").open() as file:
        table = list(csv.DictReader(file))
    assert [line["row"] for line in table] == ["model", "static", "ground_truth"]
    assert float(table[0]["lmd"]) == pytest.approx(rows["model"]["lmd"])
    markdown = (tmp_path / "results.md").read_text()
    assert "| static (identity repeated) |" in markdown and "## Per speaker" in markdown
    with (tmp_path / "per_clip.csv").open() as file:
        clips = list(csv.DictReader(file))
    assert len(clips) == 8 and clips[0]["speaker"].startswith("s")


def test_the_tool_refuses_a_config_that_does_not_fit_the_checkpoint(run_dir, data_dir):
    config = _config(data_dir)
    config.model.generator_residual_blocks = 2
    with pytest.raises(ValueError, match="does not match"):
        report.load_generator(config, str(run_dir))
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        report.find_run_config(run_dir.parent / "elsewhere")


def test_config_from_json_keeps_new_defaults(tmp_path):
    saved = configs.base_config().to_dict()
    del saved["model"]["output_kernel"]  # a field added after the run was made
    saved["model"]["width"] = 0.5
    saved["retired_field"] = 1
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = report.config_from_json(tmp_path / "config.json")
    assert config.model.width == 0.5
    assert config.model.output_kernel == configs.base_config().model.output_kernel


def test_the_offset_study_tool_on_a_built_dataset(data_dir, tmp_path):
    from lipjax.eval import offset_study

    summary, files = offset_study.run("synthetic_lips/tiny", "train", tmp_path, data_dir)
    assert summary["utterances"] == 16 and summary["delays_known"] == 16
    assert summary["share_best_offset_within_one_frame"] >= 0.75
    assert (tmp_path / "offset_study_train_opening_envelope.png").stat().st_size > 0
    assert {f.suffix for f in files} == {".png", ".json", ".csv"}
    with pytest.raises(ValueError, match="split"):
        offset_study.run("synthetic_lips/tiny", "dev", tmp_path, data_dir)


def test_a_real_corpus_gets_dlib_lmd_on_pasted_crops(tmp_path):
    """grid's dummy data end to end: the LMD comes from dlib on the crops pasted back into
    the source videos (rendered faces, which dlib does not see: every frame is counted as
    faceless and the LMD is NaN, nothing crashes); without a manual_dir it is left out."""
    import data_pipeline
    from lipjax.data import datasets

    config = _config(str(tmp_path / "tfds"))
    config.dataset = "grid"
    config.manual_dir = str(pathlib.Path(data_pipeline.__file__).parent / "grid" / "dummy_data")
    (tmp_path / "run").mkdir()
    run = _write_run(config, tmp_path / "run")
    summary = report.run(config, str(run), "test", tmp_path / "eval", sync_expert=None,
                           sharpness=False, max_batches=1, num_samples=1)  # fmt: skip
    rows = summary["rows"]
    assert np.isnan(rows["model"]["lmd"]) and np.isnan(rows["static"]["lmd"])
    assert np.isfinite(rows["model"]["psnr"]) and "lmd" not in rows["ground_truth"]
    markdown = (tmp_path / "eval" / "results.md").read_text()
    assert "dlib on the crops pasted back" in markdown
    assert "model: 0 of 64 frames scored (64 without a face in the real frame" in markdown, markdown

    source = datasets.open_split("grid", "test", config.data_dir)
    scorer, reason = report._real_lmd(config, source, "")
    assert scorer is None and "LMD left out" in reason


def test_temporal_sensitivity_stays_inside_the_generators_receptive_field():
    """The CPU generator's frame t hears video frames t-7..t+7 of audio and nothing else:
    the audio encoder reaches +-10 mel frames, fusion, the two up-sampling convolutions and
    the last 3x3x3 convolution +-4 video frames (16 mel): 4t-26 .. 4t+3+26."""
    config = configs.cpu_sized(configs.base_config())
    generator = train_step.build_networks(config).generator
    audio = jax.random.normal(jax.random.key(0), (2, 64, 128, 1))
    identity = jax.random.uniform(jax.random.key(1), (2, 64, 64, 3), minval=-1.0, maxval=1.0)
    variables = generator.init(jax.random.key(2), audio, identity, train=False)
    params = dict(variables["params"])
    kernel = params["to_rgb"]["kernel"]  # zero-initialised with the identity skip
    params["to_rgb"] = {**params["to_rgb"], "kernel": 0.05 * jax.random.normal(
        jax.random.key(3), kernel.shape)}  # fmt: skip
    variables = {**variables, "params": params}

    matrix = evaluation.temporal_sensitivity(generator, variables, audio, identity)
    assert matrix.shape == (16, 16)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-5)
    offsets = np.arange(16)[None, :] - np.arange(16)[:, None]
    assert np.all(matrix[np.abs(offsets) > 7] == 0)
    assert matrix[8, 8 - 6] > 0 and matrix[8, 8 + 6] > 0
    by_offset = evaluation.sensitivity_by_offset(matrix, range(7, 9))
    assert by_offset[8] == 0 and by_offset[-8] == 0 and sum(by_offset.values()) == pytest.approx(1)
