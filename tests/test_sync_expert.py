"""The lip-sync expert: scores on constructed embeddings, data, training, and the shipped
expert finding known offsets on videos it has never seen."""

from __future__ import annotations

import json

import flax.serialization
import jax
import numpy as np
import pytest

from lipjax.eval import lip_sync
from lipjax.models.sync_expert import SyncExpert, audio_windows, grey_lips, lip_windows

# Scores from distances


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_offset_distances_find_a_known_offset_and_average_over_the_pairs():
    rng = np.random.default_rng(0)
    audio = _unit(rng.normal(size=(30, 16)))
    lips = audio[3:23]  # lip window t matches audio window t + 3
    offsets = np.arange(-5, 6)
    curve = lip_sync.offset_distances(lips, audio, offsets)
    assert curve[offsets == 3] == pytest.approx(0.0, abs=1e-6)
    assert np.all(curve[offsets != 3] > 0.5)
    scores = lip_sync.scores_from_curve(curve, offsets)
    assert scores["offset"] == 3
    assert scores["lse_d"] == pytest.approx(0.0, abs=1e-6)
    assert scores["lse_c"] == pytest.approx(np.median(curve), abs=1e-6)
    # The same audio with its first 2 windows cut off, declared to start at frame 2: the
    # offset in frames is unchanged (offsets below 2 lose pairs).
    later = lip_sync.offset_distances(lips, audio[2:], offsets, audio_start=2)
    np.testing.assert_allclose(later[offsets >= 2], curve[offsets >= 2], atol=1e-6)
    assert lip_sync.scores_from_curve(later, offsets)["offset"] == 3


def test_scores_from_curve_by_hand_and_missing_offsets():
    offsets = [-1, 0, 1, 2]
    curve = np.array([[1.0, 0.4, np.nan, 1.2], [0.9, 0.8, 0.3, 1.0]])
    scores = lip_sync.scores_from_curve(curve, offsets)
    np.testing.assert_allclose(scores["lse_d"], [0.4, 0.3])
    np.testing.assert_allclose(scores["lse_c"], [1.0 - 0.4, 0.85 - 0.3])
    np.testing.assert_array_equal(scores["offset"], [0, 1])
    with pytest.raises(ValueError, match="no offset"):
        lip_sync.scores_from_curve(np.full((1, 4), np.nan), offsets)


def test_offset_distances_of_a_short_clip_leave_unreachable_offsets_out():
    rng = np.random.default_rng(1)
    embeddings = _unit(rng.normal(size=(4, 8)))
    curve = lip_sync.offset_distances(embeddings, embeddings, [-5, 0, 3, 5])
    assert np.isnan(curve[0]) and np.isnan(curve[3])
    assert curve[1] == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(curve[2])


# Inputs and data


def test_windows_stack_five_frames_and_twenty_mel_frames():
    frames = np.zeros((2, 9, 64, 64, 3), np.float32)
    frames[:, :, :, :, :] = np.arange(9)[None, :, None, None, None] / 10
    grey = np.asarray(grey_lips(frames))
    assert grey.shape == (2, 9, 32, 32)
    np.testing.assert_allclose(grey[0, :, 0, 0], np.arange(9) / 10, atol=1e-6)
    windows = np.asarray(lip_windows(grey))
    assert windows.shape == (2, 5, 32, 32, 5)
    np.testing.assert_allclose(windows[0, 2, 0, 0], np.arange(2, 7) / 10, atol=1e-6)
    log_mel = np.repeat(np.arange(36, dtype=np.float32)[:, None], 128, axis=1)  # 9 frames
    audio = np.asarray(audio_windows(log_mel))
    assert audio.shape == (5, 20, 128, 1)
    np.testing.assert_array_equal(audio[2, :, 0, 0], np.arange(8, 28))


def test_shift_audio_delays_and_advances_by_whole_frames():
    log_mel = np.repeat(np.arange(40, dtype=np.float32)[:, None], 3, axis=1)
    delayed = lip_sync.shift_audio(log_mel, 2)
    assert delayed.shape == log_mel.shape
    np.testing.assert_array_equal(delayed[8:, 0], np.arange(32))
    np.testing.assert_array_equal(delayed[:8, 0], 0)  # the quietest frame
    advanced = lip_sync.shift_audio(log_mel, -1)
    np.testing.assert_array_equal(advanced[:36, 0], np.arange(4, 40))
    with pytest.raises(ValueError, match="frames"):
        lip_sync.shift_audio(log_mel, 10)


def _synthetic_utterance(delay: int, frames: int = 40, seed: int = 0) -> lip_sync.Utterance:
    """Lips whose brightness encodes the frame index; audio whose value encodes the frame
    index minus the delay (the lips lead by `delay`)."""
    lips = np.broadcast_to(np.arange(frames, dtype=np.float32)[:, None, None], (frames, 32, 32))
    audio_frames = np.arange(frames) - delay
    audio = np.repeat(np.repeat(audio_frames.astype(np.float32), 4)[:, None], 128, axis=1)
    return lip_sync.Utterance(lips.copy(), audio, delay, f"s{seed}")


def test_sample_batch_pairs_lips_with_the_audio_of_their_delay():
    utterances = [_synthetic_utterance(0), _synthetic_utterance(3, seed=1)]
    batch = lip_sync.sample_batch(
        utterances, np.random.default_rng(0), 16, max_shift=2, augment=False
    )
    assert batch["lips"].shape == (16, 32, 32, 5)
    assert batch["audio"].shape == (16, 5, 20, 128, 1)
    assert batch["valid"][:, 2].all()  # the in-sync window always exists
    first_lip_frame = batch["lips"][:, 0, 0, 0]
    first_audio_value = batch["audio"][:, 2, 0, 0, 0]
    # Audio at frame t + delay carries the value t: the positive pairs frame t with frame t.
    np.testing.assert_array_equal(first_audio_value, first_lip_frame)
    shifted = batch["audio"][:, 3, 0, 0, 0]
    np.testing.assert_array_equal(shifted[batch["valid"][:, 3]],
                                  first_lip_frame[batch["valid"][:, 3]] + 1)  # fmt: skip


def test_sample_batch_rejects_utterances_too_short():
    short = _synthetic_utterance(0, frames=4)
    with pytest.raises(ValueError, match="long enough"):
        lip_sync.sample_batch([short], np.random.default_rng(0), 2)


# Training, saving and loading


def test_a_few_training_steps_and_a_save_load_round_trip(tmp_path):
    utterances = [_synthetic_utterance(d, seed=d) for d in (0, 2)]
    module = SyncExpert(lip_features=(4, 4, 4, 4, 4), speech_features=(4, 4, 4, 4, 4))
    variables, report = lip_sync.train_expert(
        utterances, steps=3, batch_size=4, max_shift=2, module=module, progress=False
    )
    assert np.isfinite(report["history"][-1]["loss"])
    lip_sync.save_expert(variables, tmp_path, module, report)
    loaded_module, loaded = lip_sync.load_expert(tmp_path)
    assert loaded_module == module
    clip = np.random.default_rng(0).uniform(-1, 1, (1, 8, 64, 64, 3)).astype(np.float32)
    log_mel = np.random.default_rng(1).normal(size=(1, 32, 128)).astype(np.float32)
    grey = np.asarray(grey_lips(clip))
    before = lip_sync.embed(module, variables, grey, log_mel)
    after = lip_sync.embed(loaded_module, loaded, grey, log_mel)
    for a, b in zip(before, after, strict=True):
        assert a.shape[:2] == (1, 4)
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="sync expert"):
        lip_sync.load_expert(tmp_path / "missing")
    # An expert saved in the earlier format (one msgpack file) still loads.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    payload = {
        "architecture": json.dumps(lip_sync.architecture_of(module)),
        "params": jax.tree.map(np.asarray, variables["params"]),
    }
    (legacy / lip_sync.LEGACY_EXPERT_FILE).write_bytes(
        flax.serialization.msgpack_serialize(payload)
    )
    legacy_module, legacy_variables = lip_sync.load_expert(legacy)
    assert legacy_module == module
    np.testing.assert_allclose(
        lip_sync.embed(legacy_module, legacy_variables, grey, log_mel)[0], before[0], atol=1e-6
    )


def test_the_shipped_expert_is_small():
    path = lip_sync.shipped_expert_path() / lip_sync.EXPERT_DIR
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 2 * 1024 * 1024


def test_scorer_checks_its_inputs():
    scorer = lip_sync.SyncScorer()
    with pytest.raises(ValueError, match="clips"):
        scorer(np.zeros((2, 16, 32, 32, 3), np.float32), np.zeros((2, 64, 128)))
    with pytest.raises(ValueError, match="log_mel"):
        scorer(np.zeros((2, 16, 64, 64, 3), np.float32), np.zeros((3, 64, 128)))


# The shipped expert on videos it never saw.


@pytest.fixture(scope="module")
def held_out_utterances():
    """Six utterances of a corpus made with another seed: new voices, faces and sentences."""
    from data_pipeline.synthetic_lips import corpus

    config = corpus.CorpusConfig(1, 3, 1, 1, 2, seed=2024)
    plans = corpus.plan_corpus(config)["test"]
    return [lip_sync.utterance_from_example(corpus.make_example(plan, config)[1]) for plan in plans]


def test_the_shipped_expert_finds_known_offsets_on_held_out_videos(held_out_utterances):
    scorer = lip_sync.SyncScorer()
    study = lip_sync.offset_study(
        scorer.module, scorer.variables, held_out_utterances, injected_shifts=(-2, 0, 3)
    )
    # The corpus delays (0..4 frames) plus injected audio shifts of -2, 0 and +3 frames.
    assert len(set(study["expected"].tolist())) >= 4
    assert study["summary"]["offset_accuracy"] >= 0.8
    assert study["summary"]["offset_within_one_frame"] == 1.0


def test_the_shipped_expert_prefers_real_lips_to_static_or_shifted_audio(held_out_utterances):
    scorer = lip_sync.SyncScorer()
    scores = lip_sync.baseline_scores(scorer, held_out_utterances, shift=12)
    real, static, shifted = scores["real"], scores["static"], scores["audio_shifted_12"]
    assert real["lse_d"] < static["lse_d"] and real["lse_d"] < shifted["lse_d"]
    assert real["lse_c"] > static["lse_c"] and real["lse_c"] > shifted["lse_c"]
    assert real["offset_equals_delay"] >= 0.8


def test_audio_around_a_clip_is_padded_with_the_quietest_frame():
    log_mel = np.repeat(np.arange(1, 41, dtype=np.float32)[:, None], 2, axis=1)  # 10 frames
    log_mel[12:16] = -5.0  # frame 3 is the quietest
    around = lip_sync.audio_around(log_mel, start=1, num_frames=4, context=2)
    assert around.shape == (32, 2)
    np.testing.assert_array_equal(around[:4, 0], -5.0)  # frame -1 lies before the utterance
    np.testing.assert_array_equal(around[4:28, 0], log_mel[:24, 0])  # frames 0..5
    inside = lip_sync.audio_around(log_mel, start=8, num_frames=2, context=1)
    np.testing.assert_array_equal(inside[:12, 0], log_mel[28:40, 0])
    np.testing.assert_array_equal(inside[12:, 0], -5.0)


# The expert as a training loss (loss.sync_expert)


@pytest.fixture(scope="module")
def held_out_clips():
    """16-frame RGB clips of unseen utterances, each with its in-sync audio window (the lips
    lead by the utterance's delay) and the same window 8 frames later."""
    from data_pipeline.synthetic_lips import corpus
    from lipjax.data import pipeline

    config = corpus.CorpusConfig(1, 3, 1, 1, 2, seed=2024)
    videos, in_sync, shifted = [], [], []
    for plan in corpus.plan_corpus(config)["test"]:
        example = corpus.make_example(plan, config)[1]
        frames = np.asarray(example["frames"], np.float32) / 127.5 - 1.0
        log_mel = pipeline.normalize_log_mel(example["log_mel"])
        delay, start = int(example["av_delay_frames"]), 8
        videos.append(frames[start : start + 16])
        mel = 4 * (start + delay)
        in_sync.append(log_mel[mel : mel + 64])
        shifted.append(log_mel[mel + 32 : mel + 96])
    return np.stack(videos), np.stack(in_sync), np.stack(shifted)


def test_the_sync_loss_prefers_real_lips_in_sync_and_its_gradient_reaches_the_frames(
    held_out_clips,
):
    import jax

    from lipjax.train import losses

    videos, in_sync, shifted = held_out_clips
    module, variables = lip_sync.load_expert()
    loss = jax.jit(lambda v, a: losses.expert_sync_loss(module, variables, v, a))
    real = float(loss(videos, in_sync))
    static = float(loss(np.repeat(videos[:, :1], 16, axis=1), in_sync))
    off_sync = float(loss(videos, shifted))
    assert 0 <= real < static and real < off_sync, (real, static, off_sync)
    gradient = jax.grad(lambda v: losses.expert_sync_loss(module, variables, v, in_sync))(videos)
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0
    # A still mouth gets a gradient on every frame: the loss asks it to move.
    still = np.repeat(videos[:, :1], 16, axis=1)
    gradient = jax.grad(lambda v: losses.expert_sync_loss(module, variables, v, in_sync))(still)
    assert (np.abs(gradient).reshape(len(still), 16, -1).max(axis=-1) > 0).all()
