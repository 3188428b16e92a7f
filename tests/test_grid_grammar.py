"""GRID grammar: sentence indexing, names, and disjoint partitions."""

import numpy as np
import pytest

from data_pipeline.synthetic_lips import grid_grammar


def test_grammar_size_and_index_roundtrip():
    assert grid_grammar.NUM_SENTENCES == 4 * 4 * 4 * 25 * 10 * 4
    sentences = grid_grammar.all_sentences()
    assert len(sentences) == grid_grammar.NUM_SENTENCES
    for index in (0, 1, 12345, grid_grammar.NUM_SENTENCES - 1):
        assert grid_grammar.sentence_from_index(index) == sentences[index]


def test_utterance_id_follows_grid_naming():
    sentence = grid_grammar.Sentence((0, 0, 0, 5, 2, 1))
    assert sentence.text == "bin blue at f two now"
    assert sentence.utterance_id == "bbaf2n"
    assert sentence.spoken_text == "bin blue at ef two now"
    assert "w" not in grid_grammar.LETTERS


def test_partition_is_disjoint_and_deterministic():
    sizes = {"train": 100, "validation": 20, "test": 30}
    parts = grid_grammar.partition_sentences(sizes, np.random.default_rng(0))
    again = grid_grammar.partition_sentences(sizes, np.random.default_rng(0))
    assert parts == again
    ids = [s.word_indices for part in parts.values() for s in part]
    assert len(ids) == len(set(ids)) == 150
    assert {k: len(v) for k, v in parts.items()} == sizes


def test_bad_arguments():
    with pytest.raises(ValueError, match="index"):
        grid_grammar.sentence_from_index(grid_grammar.NUM_SENTENCES)
    with pytest.raises(ValueError, match="sizes"):
        grid_grammar.partition_sentences(
            {"a": grid_grammar.NUM_SENTENCES + 1}, np.random.default_rng()
        )
