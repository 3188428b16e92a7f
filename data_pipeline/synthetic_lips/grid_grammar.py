"""Sentences of the GRID corpus grammar (Cooke et al. 2006).

command(4) colour(4) preposition(4) letter(25, no "w") digit(10) adverb(4): 64,000
sentences such as "bin blue at f two now". GRID names an utterance by the first letter of
each word, the digit as a numeral: "bbaf2n".
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple("abcdefghijklmnopqrstuvxyz")  # GRID has no "w"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
SLOTS = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
NUM_SENTENCES = int(np.prod([len(slot) for slot in SLOTS]))


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One GRID sentence, as the index of its word in each slot."""

    word_indices: tuple[int, int, int, int, int, int]

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(slot[i] for slot, i in zip(SLOTS, self.word_indices, strict=True))

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def utterance_id(self) -> str:
        """GRID's six-character name, e.g. "bbaf2n"."""
        words = self.words
        return "".join(w[0] for w in words[:4]) + str(self.word_indices[4]) + words[5][0]

    @property
    def spoken_text(self) -> str:
        """Text for the speech synthesiser: letters spelled so they are read as letters."""
        words = list(self.words)
        words[3] = LETTER_NAMES[words[3]]
        return " ".join(words)


# How a letter is read aloud, checked with every English eSpeak voice: a lone "a" is the
# article, "ay" is read "eye", "eff" is spelled out, and British voices say "zed".
LETTER_NAMES = {
    "a": "eh", "b": "bee", "c": "see", "d": "dee", "e": "ee", "f": "ef", "g": "gee",
    "h": "aitch", "i": "eye", "j": "jay", "k": "kay", "l": "ell", "m": "em", "n": "en",
    "o": "oh", "p": "pee", "q": "cue", "r": "are", "s": "ess", "t": "tee", "u": "you",
    "v": "vee", "x": "ex", "y": "why", "z": "zee",
}  # fmt: skip


def sentence_from_index(index: int) -> Sentence:
    """The `index`-th sentence in lexicographic slot order, 0 <= index < NUM_SENTENCES."""
    if not 0 <= index < NUM_SENTENCES:
        raise ValueError(f"index: expected 0 <= index < {NUM_SENTENCES}, got {index}")
    indices = []
    for slot in reversed(SLOTS):
        index, remainder = divmod(index, len(slot))
        indices.append(remainder)
    return Sentence(tuple(reversed(indices)))


def all_sentences() -> list[Sentence]:
    """Every sentence of the grammar in index order."""
    return [Sentence(idx) for idx in itertools.product(*(range(len(s)) for s in SLOTS))]


def partition_sentences(
    sizes: dict[str, int], rng: np.random.Generator
) -> dict[str, list[Sentence]]:
    """Draws disjoint random sets of sentences, one per name, of the given sizes."""
    total = sum(sizes.values())
    if total > NUM_SENTENCES:
        raise ValueError(f"sizes: {total} sentences asked for, the grammar has {NUM_SENTENCES}")
    chosen = rng.choice(NUM_SENTENCES, size=total, replace=False)
    parts, start = {}, 0
    for name, size in sizes.items():
        parts[name] = [sentence_from_index(int(i)) for i in chosen[start : start + size]]
        start += size
    return parts
