"""Knowledge-base files: YAML and CSV in and out, every bad row reported, nothing half-read."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.articles import Article
from kb.io import KbFileError, read_articles, write_articles
from kb.language import detect_language
from tests.conftest import REPO

SAMPLE = REPO / "config" / "kb" / "sample.yaml"

ARTICLES = [
    Article(
        id="internet-down",
        title="Internet is not working",
        answers={
            "ru": "Перезагрузите роутер.\nЕсли не помогло, напишите нам.",
            "en": "Restart it.",
        },
        examples=("не работает интернет", "пропал инет", "internet is down", "no connection"),
        tags=("internet", "troubleshooting"),
    ),
    Article(
        id="cancel",
        title='Cancel, "quoted", with a comma',
        answers={"en": "An agent will help."},
        examples=("cancel my contract",),
        never_auto=True,
        threshold=0.97,
        enabled=False,
    ),
]


def test_the_sample_knowledge_base_reads_cleanly_in_both_languages() -> None:
    articles = read_articles(SAMPLE)

    assert len(articles) >= 30
    for article in articles:
        assert set(article.answers) == {"ru", "en"}, article.id
        languages = [detect_language(text) for text in article.examples]
        assert 4 <= languages.count("ru") <= 16, article.id
        assert 4 <= languages.count("en") <= 16, article.id
    never_auto = {article.id for article in articles if article.never_auto}
    assert {"cancel-contract", "complaint", "refund"} <= never_auto


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".csv"])
def test_writing_then_reading_gives_the_same_articles(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"kb{suffix}"

    write_articles(path, ARTICLES)

    assert read_articles(path) == ARTICLES


@pytest.mark.parametrize("suffix", [".yaml", ".csv"])
def test_the_sample_survives_a_round_trip(tmp_path: Path, suffix: str) -> None:
    sample = read_articles(SAMPLE)
    path = tmp_path / f"kb{suffix}"

    write_articles(path, sample)

    assert read_articles(path) == sample


def test_examples_are_put_in_language_order_so_a_round_trip_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    path.write_text("id,answer_en,examples\na,x,hello there|привет|how are you|как дела\n")

    (article,) = read_articles(path)

    assert article.examples == ("привет", "как дела", "hello there", "how are you")


def problems(path: Path) -> list[str]:
    with pytest.raises(KbFileError) as caught:
        read_articles(path)
    return caught.value.problems


def test_every_bad_csv_row_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "kb.csv"
    path.write_text(
        "id,title,answer_ru,answer_en,examples,tags,never_auto,threshold,enabled\n"
        'good,Good,,"two\nlines",hello there,,,,\n'
        "bad-threshold,T,,yes,hello,,,high,\n"
        "good2,G,да,,привет,,,,\n"
        "bad-flag,F,,yes,hello,,maybe,,\n"
        "\n"
        "short,row\n"
    )

    assert problems(path) == [
        f"{path}:4: threshold: 'high' is not a number",
        f"{path}:6: never_auto: 'maybe' is not true or false",
        f"{path}:8: 2 cells for 9 columns",
    ]


def test_every_bad_yaml_article_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "kb.yaml"
    path.write_text(
        "articles:\n"
        "- id: good\n"
        "  answers: {en: Fine.}\n"
        "  examples: {en: [is it fine]}\n"
        "- id: no-answer\n"
        "  answers: {}\n"
        "  examples: {en: [hello]}\n"
        "- id: wrong-language\n"
        "  answers: {ru: Да.}\n"
        "  examples: {ru: [hello there]}\n"
        "- id: good\n"
        "  answers: {en: Again.}\n"
        "  examples: {en: [again]}\n"
        "- id: typo\n"
        "  answers: {en: Fine.}\n"
        "  examples: {en: [hello]}\n"
        "  never_atuo: true\n"
        "- just a question\n"
    )

    assert problems(path) == [
        f"{path}:5: answers: needs an answer in ru or en",
        f"{path}:8: examples: 'hello there' is listed under ru but reads as en",
        f"{path}:11: duplicate id 'good' (first on line 2)",
        f"{path}:14: unknown keys ['never_atuo'] (an article is a mapping of "
        "['answers', 'enabled', 'examples', 'id', 'never_auto', 'tags', 'threshold', 'title'])",
        f"{path}:18: expected a mapping, got 'just a question'",
    ]


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("kb.yaml", "articles: [\n", ":2: not valid YAML"),
        ("kb.yaml", "- id: a\n", ":1: expected a mapping with an `articles:` list"),
        ("kb.csv", "id,answer,examples\n", ":1: columns: unknown ['answer']"),
        ("kb.txt", "", ": unknown format .txt"),
    ],
)
def test_a_file_that_does_not_parse_is_one_clear_problem(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(text)

    (reported,) = problems(path)

    assert reported.startswith(f"{path}{problem}")


def test_csv_cannot_hold_an_example_with_the_separator(tmp_path: Path) -> None:
    article = Article(id="a", answers={"en": "x"}, examples=("this | that",))

    with pytest.raises(KbFileError, match="use YAML"):
        write_articles(tmp_path / "kb.csv", [article])
