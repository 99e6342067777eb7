"""Text normalisation for Russian and English: case, ё, tokens, stems and character n-grams."""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"\w+")
_CYRILLIC = re.compile(r"[а-я]")
_SPACES = re.compile(r"\s+")
CHAR_NGRAM_RANGE = (2, 5)

_STEMMERS = {"ru": Stemmer.Stemmer("russian"), "en": Stemmer.Stemmer("english")}


def normalize_text(text: str) -> str:
    """Lower case, ё as е, compatibility forms folded (NFKC), whitespace runs collapsed."""
    text = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    return _SPACES.sub(" ", text).strip()


def tokens(text: str) -> list[str]:
    """The words of the normalised text (letters, digits and underscores)."""
    return _WORD.findall(normalize_text(text))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Stem one normalised word by its own script, so mixed ru/en questions stem right."""
    language = "ru" if _CYRILLIC.search(word) else "en"
    return str(_STEMMERS[language].stemWord(word))


def word_features(text: str) -> list[str]:
    """Stems and adjacent stem pairs: pairs keep a little word order ("card not" vs "not card")."""
    stems = [stem(word) for word in tokens(text)]
    return stems + [f"{a} {b}" for a, b in itertools.pairwise(stems)]


def char_ngrams(
    text: str, low: int = CHAR_NGRAM_RANGE[0], high: int = CHAR_NGRAM_RANGE[1]
) -> list[str]:
    """Character n-grams inside space-padded words: a typo breaks a few n-grams, not the word."""
    return [gram for word in tokens(text) for gram in word_ngrams(word, low, high)]


@lru_cache(maxsize=200_000)
def word_ngrams(
    word: str, low: int = CHAR_NGRAM_RANGE[0], high: int = CHAR_NGRAM_RANGE[1]
) -> tuple[str, ...]:
    """The n-grams of one normalised word, space-padded (words recur: each is cut once)."""
    padded = f" {word} "
    return tuple(
        padded[i : i + n] for n in range(low, high + 1) for i in range(len(padded) - n + 1)
    )
