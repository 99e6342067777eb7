from kb.articles import Article
from kb.matcher import Matcher
from kb.normalize import char_ngrams, normalize_text, stem, tokens, word_features


def test_yo_is_folded_to_ye():
    assert normalize_text("Ёлка и всё") == "елка и все"


def test_case_and_spaces_are_normalised():
    assert normalize_text("  Where IS\tmy   CARD ") == "where is my card"


def test_russian_word_forms_share_a_stem():
    assert stem("карта") == stem("карту") == stem("картой")


def test_english_word_forms_share_a_stem():
    assert stem("payments") == stem("payment") and stem("paying") == stem("pays") == "pay"


def test_mixed_question_stems_each_word_by_its_script():
    assert tokens("Роутер Keenetic не работает") == ["роутер", "keenetic", "не", "работает"]
    assert stem("routers") == "router" and stem("роутеры") == stem("роутер")


def test_word_features_keep_adjacent_pairs():
    assert word_features("card not working") == ["card", "not", "work", "card not", "not work"]


def test_char_ngrams_are_taken_inside_padded_words():
    grams = char_ngrams("ab", low=2, high=3)
    assert grams == [" a", "ab", "b ", " ab", "ab "]


def _kb() -> list[Article]:
    return [
        Article(
            "tariff",
            examples=(
                "Как сменить тариф?",
                "Хочу поменять тарифный план",
                "how do I change my plan",
            ),
        ),
        Article(
            "router",
            examples=(
                "Роутер не раздает интернет",
                "Не работает wifi роутер",
                "my router has no internet",
            ),
        ),
        Article(
            "payment",
            examples=(
                "Как оплатить интернет картой?",
                "Способы оплаты услуг",
                "how can I pay my bill",
            ),
        ),
        Article(
            "speed",
            examples=(
                "Низкая скорость интернета",
                "Интернет очень медленный",
                "the internet is slow",
            ),
        ),
    ]


def test_misspelt_russian_question_still_finds_its_article():
    matcher = Matcher.fit(_kb())
    assert matcher.match("ротуер не раздаёт интеренет")[0].article_id == "router"


def test_misspelt_english_question_still_finds_its_article():
    matcher = Matcher.fit(_kb())
    assert matcher.match("how do I chnage my plna")[0].article_id == "tariff"
