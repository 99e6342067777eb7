import pytest

from kb.articles import Article, ArticleError
from kb.datasets import LabelledQuestion
from kb.matcher import Matcher, MatcherError


def _kb(**router_overrides) -> list[Article]:
    router = {
        "examples": ("Роутер не раздает интернет", "Не работает wifi", "my router has no internet"),
        **router_overrides,
    }
    return [
        Article("tariff", examples=("Как сменить тариф?", "Хочу другой тариф", "change my plan")),
        Article("router", **router),
        Article("payment", examples=("Как оплатить интернет?", "Способы оплаты", "how do I pay")),
    ]


def test_matches_come_best_first_with_confidence_between_zero_and_one():
    matches = Matcher.fit(_kb()).match("не работает роутер", k=3)
    assert matches[0].article_id == "router"
    assert len(matches) == 3
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert all(0.0 <= m.confidence <= 1.0 for m in matches)


def test_russian_and_english_questions_find_the_same_article():
    matcher = Matcher.fit(_kb())
    assert matcher.match("как сменить тариф")[0].article_id == "tariff"
    assert matcher.match("how can I change the plan")[0].article_id == "tariff"


def test_disabled_article_is_never_matched():
    matcher = Matcher.fit(_kb(enabled=False))
    assert "router" not in matcher.article_ids
    assert all(m.article_id != "router" for m in matcher.match("не работает роутер", k=3))


def test_duplicate_article_ids_are_rejected():
    with pytest.raises(MatcherError, match="unique"):
        Matcher.fit([*_kb(), Article("tariff", examples=("тариф",))])


def test_knowledge_base_without_enabled_articles_is_rejected():
    with pytest.raises(MatcherError, match="no enabled article"):
        Matcher.fit([Article("a", examples=("x",), enabled=False)])


def test_calibration_questions_may_include_out_of_scope_ones():
    calibration = [
        LabelledQuestion("какая погода завтра", "oos"),
        LabelledQuestion("тариф", "tariff"),
    ]
    matcher = Matcher.fit(_kb(), calibration)
    assert matcher.match("сменить тариф")[0].article_id == "tariff"


def test_answer_falls_back_to_the_other_language():
    article = Article("a", answers={"en": "Reboot the router."}, examples=("router",))
    assert article.answer_for("ru") == "Reboot the router."
    assert article.answer_for("en") == "Reboot the router."


def test_article_threshold_outside_zero_to_one_is_rejected():
    with pytest.raises(ArticleError, match="threshold"):
        Article("a", examples=("x",), threshold=1.5)


def test_article_without_example_questions_is_rejected():
    with pytest.raises(ArticleError, match="example"):
        Article("a", examples=("  ",))
