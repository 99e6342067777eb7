"""The vector space of a fit: examples counted once for every fold encode as questions do."""

from __future__ import annotations

import numpy as np

from kb.features import Counted, FeatureSpace

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
