"""The input pipeline: windows, normalisation, identity frames, determinism, resume, eval."""

from __future__ import annotations

import pathlib
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from lipjax.data import audio as audio_lib
from lipjax.data import datasets, pipeline

DATASET = "synthetic_lips/tiny"
BATCH = 8  # conftest forces 8 CPU devices: one row per device


@pytest.fixture(scope="module")
def data_dir(tiny_data_dir):
    return tiny_data_dir


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("workdir")


@pytest.fixture(scope="module")
def examples(data_dir):
    """Decoded utterances of every split, in split order."""
    builder = datasets.open_builder(DATASET, data_dir)
    sources = {split: builder.as_data_source(split=split) for split in ("train", "test")}
    return {split: [source[i] for i in range(len(source))] for split, source in sources.items()}


def _train_iterator(data_dir, cache_dir, seed=0, **kwargs):
    return pipeline.create_train_iterator(
        DATASET, "train", data_dir, global_batch_size=BATCH, seed=seed, cache_dir=cache_dir,
        **kwargs,
    )  # fmt: skip


def _take(iterator, count):
    return [next(iterator) for _ in range(count)]


def _assert_batches_equal(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _assert_row_matches_source(batch, row, utterances, stats=audio_lib.FIXED_LOG_MEL_STATS):
    """The row's video, audio (normalised with `stats`) and landmarks are exactly its
    utterance's window."""
    example = utterances[int(batch["utterance_index"][row])]
    start = int(batch["start_frame"][row])
    frames = example["frames"][start : start + 16]
    np.testing.assert_array_equal(batch["video"][row], frames.astype(np.float32) / 127.5 - 1)
    np.testing.assert_array_equal(
        batch["audio"][row, :, :, 0],
        (example["log_mel"][4 * start : 4 * start + 64] - np.float32(stats.mean))
        / np.float32(stats.std),
    )
    np.testing.assert_array_equal(batch["landmarks"][row], example["landmarks"][start : start + 16])
    assert batch["speaker_id"][row] == pipeline.speaker_id(example["speaker"])
    return example


def test_shapes_dtypes_and_ranges(data_dir, cache_dir):
    batch = next(_train_iterator(data_dir, cache_dir))
    expected = {
        "video": ((BATCH, 16, 64, 64, 3), np.float32),
        "identity": ((BATCH, 64, 64, 3), np.float32),
        "audio": ((BATCH, 64, 128, 1), np.float32),
        "landmarks": ((BATCH, 16, 20, 2), np.float32),
        "utterance_index": ((BATCH,), np.int32),
        "start_frame": ((BATCH,), np.int32),
        "speaker_id": ((BATCH,), np.int32),
    }
    assert {key: (value.shape, value.dtype) for key, value in batch.items()} == expected
    for key in ("video", "identity"):
        assert batch[key].min() >= -1.0 and batch[key].max() <= 1.0
    assert np.all(np.isfinite(batch["audio"]))
    assert batch["audio"].min() > -8 and batch["audio"].max() < 6  # normalised, not dB
    assert batch["landmarks"].min() >= 0 and batch["landmarks"].max() <= 64


def test_normalisation_helpers():
    frames = np.array([0, 255, 128], np.uint8)
    np.testing.assert_allclose(pipeline.normalize_video(frames), [-1, 1, 0.5 / 127.5], atol=1e-6)
    audio = pipeline.normalize_log_mel(np.full((64, 128), pipeline.LOG_MEL_MEAN))
    assert audio.shape == (64, 128, 1) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, 0, atol=1e-6)


def test_batches_are_normalised_with_the_statistics_given(data_dir, cache_dir, examples):
    stats = audio_lib.LogMelStats(-50.0, 20.0)
    batch = next(_train_iterator(data_dir, cache_dir, log_mel_stats=stats))
    for row in range(BATCH):
        _assert_row_matches_source(batch, row, examples["train"], stats)
    (evaluated, _), *_ = pipeline.create_eval_iterator(
        DATASET, "test", data_dir, global_batch_size=BATCH, cache_dir=cache_dir,
        log_mel_stats=stats,
    )  # fmt: skip
    _assert_row_matches_source(evaluated, 0, examples["test"], stats)


def test_each_corpus_carries_its_own_log_mel_statistics(data_dir, examples, tmp_path, monkeypatch):
    """The build stores its train split's statistics with the dataset; one built before
    they were stored has them computed from its train split, and cached."""
    log_mels = np.concatenate([np.asarray(e["log_mel"]) for e in examples["train"]])
    expected = [log_mels.mean(dtype=np.float64), log_mels.std(dtype=np.float64)]
    builder = datasets.open_builder(DATASET, data_dir)
    stored = builder.info.metadata[audio_lib.LOG_MEL_STATS_METADATA_KEY]
    assert stored["count"] == log_mels.size and stored["split"] == "train"
    stats = pipeline.dataset_log_mel_stats(DATASET, data_dir)
    np.testing.assert_allclose([stats.mean, stats.std], expected, rtol=1e-9)
    assert abs(stats.mean - audio_lib.LOG_MEL_MEAN) > 0.1  # tiny is not small: its own

    old_build = tmp_path / "tfds"
    shutil.copytree(data_dir, old_build)
    version_dir = old_build / pathlib.Path(builder.data_dir).relative_to(builder.data_dir_root)
    (version_dir / "metadata.json").unlink()
    cache = tmp_path / "cache"
    computed = pipeline.dataset_log_mel_stats(DATASET, str(old_build), cache)
    assert computed == stats or np.allclose([computed.mean, computed.std], expected, rtol=1e-9)
    assert len(list(cache.glob("*log_mel_stats.json"))) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("read the train split again")

    monkeypatch.setattr(audio_lib.LogMelStatsAccumulator, "add", no_reading)
    assert pipeline.dataset_log_mel_stats(DATASET, str(old_build), cache) == computed


def test_eval_visits_every_window_once_and_matches_source(data_dir, cache_dir, examples):
    utterances = examples["test"]
    expected = {
        (u, s)
        for u, example in enumerate(utterances)
        for s in range(0, len(example["frames"]) - 15, 8)
    }
    batches = list(
        pipeline.create_eval_iterator(
            DATASET, "test", data_dir, global_batch_size=BATCH, cache_dir=cache_dir
        )
    )
    assert len(batches) == -(-len(expected) // BATCH)
    visited = []
    for batch, mask in batches:
        assert mask.shape == (BATCH,) and mask.dtype == bool
        for row in range(BATCH):
            if not mask[row]:
                assert batch["utterance_index"][row] == -1 and not batch["video"][row].any()
                continue
            example = _assert_row_matches_source(batch, row, utterances)
            np.testing.assert_array_equal(  # evaluation identity: the utterance's first frame
                batch["identity"][row], example["frames"][0].astype(np.float32) / 127.5 - 1
            )
            visited.append((int(batch["utterance_index"][row]), int(batch["start_frame"][row])))
    assert len(visited) == len(set(visited)) == len(expected)
    assert set(visited) == expected
    assert not batches[-1][1].all()  # this split does not fill its last batch: padding tested
    assert all(mask.all() for _, mask in batches[:-1])


def test_audio_lookahead_starts_the_audio_later_and_pads_past_the_end(
    data_dir, cache_dir, examples
):
    """model.audio_lookahead_frames = 3: each window's audio is its utterance's log-mel from
    3 frames after the video window's start; the last window of an utterance reaches past
    its end and is padded with the utterance's quietest mel frame. Video is unchanged."""
    utterances = examples["test"]
    batches = pipeline.create_eval_iterator(
        DATASET, "test", data_dir, global_batch_size=BATCH, cache_dir=cache_dir,
        audio_lookahead=3,
    )  # fmt: skip
    padded_rows = 0
    for batch, mask in batches:
        for row in np.flatnonzero(mask):
            example = utterances[int(batch["utterance_index"][row])]
            start, log_mel = int(batch["start_frame"][row]), example["log_mel"]
            audio = batch["audio"][row, :, :, 0] * np.float32(pipeline.LOG_MEL_STD)
            audio += np.float32(pipeline.LOG_MEL_MEAN)
            inside = min(64, len(log_mel) - 4 * (start + 3))
            expected = log_mel[4 * start + 12 :][:inside]
            np.testing.assert_allclose(audio[:inside], expected, atol=1e-4)
            if inside < 64:
                padded_rows += 1
                quietest = log_mel[np.argmin(log_mel.mean(axis=1))]
                np.testing.assert_allclose(audio[inside:] - quietest, 0.0, atol=1e-4)
            np.testing.assert_array_equal(
                batch["video"][row], example["frames"][start : start + 16] / np.float32(127.5) - 1
            )
    assert padded_rows > 0
    with pytest.raises(ValueError, match="audio_lookahead_frames"):
        pipeline.create_eval_iterator(
            DATASET, "test", data_dir, global_batch_size=BATCH, cache_dir=cache_dir,
            audio_lookahead=-1,
        )  # fmt: skip


def test_eval_is_repeatable(data_dir, cache_dir):
    dataset = pipeline.create_eval_iterator(
        DATASET, "validation", data_dir, global_batch_size=BATCH, cache_dir=cache_dir
    )
    first, second = list(dataset), list(dataset)
    _assert_batches_equal([b for b, _ in first], [b for b, _ in second])


def test_train_windows_and_identity_come_from_the_same_utterance(data_dir, cache_dir, examples):
    utterances = examples["train"]
    for batch in _take(_train_iterator(data_dir, cache_dir), 3):
        assert np.all(batch["start_frame"] % 8 == 0)
        for row in range(BATCH):
            example = _assert_row_matches_source(batch, row, utterances)
            candidates = example["frames"].astype(np.float32) / 127.5 - 1
            matches = np.all(candidates == batch["identity"][row], axis=(1, 2, 3))
            assert matches.any(), "identity is not a frame of the window's utterance"


def test_train_is_deterministic_given_a_seed(data_dir, cache_dir):
    first = _take(_train_iterator(data_dir, cache_dir, seed=3), 3)
    second = _take(_train_iterator(data_dir, cache_dir, seed=3), 3)
    _assert_batches_equal(first, second)
    other = _take(_train_iterator(data_dir, cache_dir, seed=4), 3)
    order = [np.stack([b["utterance_index"], b["start_frame"]]) for b in first]
    other_order = [np.stack([b["utterance_index"], b["start_frame"]]) for b in other]
    assert not np.array_equal(order, other_order)


def test_epochs_are_reshuffled_and_cover_every_window(data_dir, cache_dir):
    index = pipeline.window_index(DATASET, "train", data_dir, cache_dir)
    per_epoch = index.num_windows // BATCH
    batches = _take(_train_iterator(data_dir, cache_dir), 2 * per_epoch)
    keys = [
        (int(u), int(s))
        for b in batches
        for u, s in zip(b["utterance_index"], b["start_frame"], strict=True)
    ]
    epoch_one, epoch_two = keys[: index.num_windows], keys[index.num_windows :]
    assert len(set(epoch_one)) == len(epoch_one)  # no window twice within an epoch
    assert epoch_one[: len(epoch_two)] != epoch_two


def test_resume_gives_exactly_the_next_batches(data_dir, cache_dir):
    iterator = _train_iterator(data_dir, cache_dir, seed=7)
    _take(iterator, 12)  # the first epoch (101 windows) ends inside the next batches
    state = iterator.get_state()
    after_save = _take(iterator, 2)

    resumed = _train_iterator(data_dir, cache_dir, seed=7)
    resumed.set_state(state)
    _assert_batches_equal(after_save, _take(resumed, 2))


def test_resume_through_an_orbax_checkpoint(data_dir, cache_dir, tmp_path):
    iterator = _train_iterator(data_dir, cache_dir, seed=1)
    _take(iterator, 3)
    train_state = {"step": np.array(3), "weights": np.arange(4.0)}
    with ocp.CheckpointManager(tmp_path / "checkpoints") as manager:
        manager.save(
            3,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(train_state),
                data=pipeline.checkpoint_save_args(iterator),
            ),
        )
        after_save = _take(iterator, 2)  # while orbax may still be writing: state taken at save
        manager.wait_until_finished()

    resumed = _train_iterator(data_dir, cache_dir, seed=1)
    with ocp.CheckpointManager(tmp_path / "checkpoints") as manager:
        restored = manager.restore(
            manager.latest_step(),
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(train_state),
                data=pipeline.checkpoint_restore_args(resumed),
            ),
        )
    assert restored.data is resumed
    np.testing.assert_array_equal(restored.state["weights"], train_state["weights"])
    _assert_batches_equal(after_save, _take(resumed, 2))


def test_window_index_is_cached_and_reused(data_dir, tmp_path, monkeypatch, examples):
    index = pipeline.window_index(DATASET, "train", data_dir, cache_dir=tmp_path)
    assert len(list((tmp_path / "window_index").glob("*.npz"))) == 1
    lengths = [len(example["frames"]) for example in examples["train"]]
    np.testing.assert_array_equal(index.num_frames, lengths)

    def fail(source):
        raise AssertionError("the cached index was not used")

    monkeypatch.setattr(pipeline, "_read_utterance_lengths", fail)
    again = pipeline.window_index(DATASET, "train", data_dir, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.start_frame, index.start_frame)
    np.testing.assert_array_equal(again.utterance_row, index.utterance_row)
    assert set(again.speaker_names.values()) == {
        example["speaker"].decode() for example in examples["train"]
    }


def test_short_utterances_are_skipped_and_counted(data_dir, cache_dir, examples):
    lengths = np.array([len(example["frames"]) for example in examples["train"]])
    window = int(np.median(lengths)) + 1  # about half the utterances are too short
    index = pipeline.window_index(DATASET, "train", data_dir, cache_dir, window=window)
    assert index.num_skipped_utterances == np.sum(lengths < window) > 0
    assert np.all(index.start_frame + window <= lengths[index.utterance_row])
    assert set(index.utterance_row) == set(np.flatnonzero(lengths >= window))


def test_unbuilt_dataset_names_the_build_command(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        pipeline.create_train_iterator(
            DATASET, "train", str(tmp_path), global_batch_size=BATCH, seed=0
        )
    command = f"python -m data_pipeline.synthetic_lips build --config=tiny --data_dir={tmp_path}"
    assert command in str(error.value)
    generic = datasets.build_command("grid/default", "/data")
    assert generic.startswith("python -m data_pipeline.build grid --manual_dir=")
    assert "--config=default" in generic and "--data_dir=/data" in generic


def test_unknown_split_is_an_error(data_dir, cache_dir):
    with pytest.raises(ValueError, match="no split 'dev'"):
        pipeline.window_index(DATASET, "dev", data_dir, cache_dir)


def test_batch_size_must_split_over_the_devices(data_dir):
    assert jax.device_count() == 8
    with pytest.raises(ValueError, match=r"global_batch_size=12 .*\(8\)"):
        pipeline.create_train_iterator(DATASET, "train", data_dir, global_batch_size=12, seed=0)
    with pytest.raises(ValueError, match="global_batch_size=0"):
        pipeline.create_eval_iterator(DATASET, "test", data_dir, global_batch_size=0)


def test_to_global_arrays_shards_rows_over_the_data_axis(data_dir, cache_dir):
    mesh = jax.make_mesh((8,), (pipeline.DATA_AXIS,))
    sharding = pipeline.make_data_sharding(mesh)
    batch, mask = next(
        iter(
            pipeline.create_eval_iterator(
                DATASET, "test", data_dir, global_batch_size=BATCH, cache_dir=cache_dir
            )
        )
    )
    global_batch, global_mask = pipeline.to_global_arrays((batch, mask), sharding)
    for key, value in global_batch.items():
        assert isinstance(value, jax.Array) and value.sharding == sharding
        assert value.shape == batch[key].shape
        assert [shard.data.shape[0] for shard in value.addressable_shards] == [1] * 8
        np.testing.assert_array_equal(np.asarray(value), batch[key])
    np.testing.assert_array_equal(np.asarray(global_mask), mask)

    with pytest.raises(ValueError, match="global batch of 4 rows"):
        pipeline.to_global_arrays({"video": batch["video"][:4]}, sharding)


def test_each_process_reads_its_own_shard_of_utterances(data_dir, tmp_path, monkeypatch):
    whole = pipeline.window_index(DATASET, "train", data_dir, cache_dir=tmp_path)
    shards = []
    monkeypatch.setattr(jax, "process_count", lambda: 3)
    for process in range(3):
        monkeypatch.setattr(jax, "process_index", lambda process=process: process)
        shards.append(pipeline.window_index(DATASET, "train", data_dir, cache_dir=tmp_path))
    assert [s.first_utterance for s in shards] == [0, 6, 11]  # 16 utterances: 6, 5, 5
    assert len(list((tmp_path / "window_index").glob("*.npz"))) == 4  # one per process shard
    utterances = np.concatenate([s.first_utterance + s.utterance_row for s in shards])
    np.testing.assert_array_equal(utterances, whole.utterance_row)
    np.testing.assert_array_equal(
        np.concatenate([s.start_frame for s in shards]), whole.start_frame
    )
