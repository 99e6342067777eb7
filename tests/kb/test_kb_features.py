"""The vector space of a fit: examples counted once for every fold encode as questions do."""

from __future__ import annotations

from collections import Counter

import numpy as np

from kb.features import Counted, FeatureSpace
from kb.normalize import char_ngrams, tokens, word_features

EXAMPLES = [
    "how do I reset my password",
    "I forgot my password",
    "where is my order",
    "мой заказ не пришёл",
    "заказ задерживается, где курьер",
    "card was charged twice",
]


def test_a_space_fitted_on_some_counted_examples_encodes_them_as_it_encodes_their_texts() -> None:
    counted = Counted(EXAMPLES)
    rows = np.array([0, 2, 3, 5])
    space = FeatureSpace()
    fitted = space.fit(counted.rows(rows))

    asked = space.encode([EXAMPLES[int(i)] for i in rows])

    assert np.allclose(fitted.vectors.toarray(), asked.vectors.toarray(), atol=1e-6)
    assert np.allclose(fitted.known_share, asked.known_share)


def test_an_example_left_out_of_the_fit_has_only_the_words_the_fit_saw() -> None:
    counted = Counted(EXAMPLES)
    space = FeatureSpace()
    space.fit(counted.rows(np.array([0, 2, 3])))

    left_out = space.encode(counted.rows(np.array([4, 1])))
    asked = space.encode([EXAMPLES[4], EXAMPLES[1]])

    assert np.allclose(left_out.vectors.toarray(), asked.vectors.toarray(), atol=1e-6)
    assert np.allclose(left_out.known_share, asked.known_share)
    assert 0 < left_out.known_share[0] < 1


def test_the_examples_counts_are_the_ones_their_texts_give_one_by_one() -> None:
    texts = [
        *EXAMPLES,
        "",
        "?!",
        "card card card card",
        "my card, my card",
        "card Карта card",
        "курьер",
        "курьер где",
    ]
    counted = Counted(texts)

    for terms, analyzer in ((counted.words, word_features), (counted.chars, char_ngrams)):
        for row, text in enumerate(texts):
            found = terms.counts[row]
            assert dict(zip([terms.terms[i] for i in found.indices], found.data, strict=True)) == (
                Counter(analyzer(text))
            ), text
    assert counted.words_n.tolist() == [len(tokens(text)) for text in texts]
