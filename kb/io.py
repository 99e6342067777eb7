"""Knowledge-base files: YAML and CSV read into Articles and written back (no database here).

Reading checks every row and reports every bad one (`file:line: reason`) before anything is
returned, so that an import is all or nothing. Each example question belongs to a language,
detected from its text; readers put the examples in language order (ru, then en) so that reading
an exported file gives back exactly the articles that were exported.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from kb.articles import Article, ArticleError
from kb.language import LANGUAGES, detect_language

CSV_COLUMNS = (
    "id",
    "title",
    "answer_ru",
    "answer_en",
    "examples",
    "tags",
    "never_auto",
    "threshold",
    "enabled",
)
YAML_KEYS = frozenset(
    {"id", "title", "answers", "examples", "tags", "never_auto", "threshold", "enabled"}
)
SEPARATOR = "|"
MAX_ID = 128  # the store's column sizes
MAX_TITLE = 255
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


class KbFileError(Exception):
    """A knowledge-base file that cannot be imported: one `file:line: reason` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Row(NamedTuple):
    """One article's raw fields as the file gives them, with the line it starts on."""

    line: int
    fields: Mapping[str, Any]


class _RowError(ValueError):
    """One reason a row is bad; the caller adds the file and line."""


def file_format(path: Path) -> str:
    """'yaml' or 'csv' from the file name's extension."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".csv":
        return "csv"
    raise KbFileError([f"{path}: unknown format {suffix or '(no extension)'}: use .yaml or .csv"])


def read_rows(path: Path) -> list[Row]:
    """The file's rows, unchecked; a file that does not parse at all raises KbFileError."""
    fmt = file_format(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets save CSV with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise KbFileError([f"{path}: {exc}"]) from exc
    return _yaml_rows(path, text) if fmt == "yaml" else _csv_rows(path, text)


def articles_from_rows(path: Path, rows: Iterable[Row]) -> list[Article]:
    """Every row as an Article, or KbFileError listing every bad row."""
    fmt = file_format(path)
    convert = _yaml_article if fmt == "yaml" else _csv_article
    articles: list[Article] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for row in rows:
        if "" in row.fields:  # the reader found the row malformed and says why
            problems.append(f"{path}:{row.line}: {row.fields['']}")
            continue
        try:
            article = convert(row.fields)
        except (_RowError, ArticleError) as exc:
            problems.append(f"{path}:{row.line}: {exc}")
            continue
        if article.id in first_line:
            problems.append(
                f"{path}:{row.line}: duplicate id {article.id!r} (first on line "
                f"{first_line[article.id]})"
            )
            continue
        first_line[article.id] = row.line
        articles.append(article)
    if problems:
        raise KbFileError(problems)
    return articles


def read_articles(path: Path) -> list[Article]:
    return articles_from_rows(path, read_rows(path))


def write_articles(
    path: Path, articles: Iterable[Article], progress: Callable[[], None] | None = None
) -> None:
    """Write the articles in the format the extension names; `progress` is called per article."""
    fmt = file_format(path)
    tick = progress or (lambda: None)
    if fmt == "yaml":
        items = []
        for article in articles:
            items.append(_yaml_item(article))
            tick()
        with path.open("w", encoding="utf-8") as out:
            yaml.dump(
                {"articles": items},
                out,
                Dumper=_Dumper,
                allow_unicode=True,
                sort_keys=False,
                width=100,
            )
        return
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for article in articles:
            writer.writerow(_csv_record(article))
            tick()


# --- YAML -------------------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The C loader when libyaml is there: large files parse several times faster."""


class _Dumper(yaml.SafeDumper):
    """Multi-line answers as `|` blocks, so that exported files stay readable."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _Dumper.represent_str)


def _yaml_rows(path: Path, text: str) -> list[Row]:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return []
        document = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise KbFileError([f"{where}: not valid YAML: {exc.problem}"]) from exc
    finally:
        loader.dispose()
    if not isinstance(document, dict) or not isinstance(document.get("articles"), list):
        raise KbFileError([f"{path}:1: expected a mapping with an `articles:` list"])
    # The composed nodes keep the line each article starts on; the constructed data does not.
    # A repeated key: YAML keeps the last one.
    items_node = [value for key, value in root.value if key.value == "articles"][-1]
    return [
        Row(
            node.start_mark.line + 1,
            item if isinstance(item, dict) else {"": f"expected a mapping, got {item!r}"},
        )
        for node, item in zip(items_node.value, document["articles"], strict=True)
    ]


def _yaml_article(fields: Mapping[str, Any]) -> Article:
    unknown = sorted(str(key) for key in set(fields) - YAML_KEYS)
    if unknown:
        raise _RowError(f"unknown keys {unknown} (an article is a mapping of {sorted(YAML_KEYS)})")
    answers = fields.get("answers")
    if not isinstance(answers, dict):
        raise _RowError("answers: expected a mapping of language to text (ru: ..., en: ...)")
    examples = fields.get("examples")
    if not isinstance(examples, dict):
        raise _RowError("examples: expected a mapping of language to a list of questions")
    texts: list[tuple[str, str]] = []
    for language, questions in examples.items():
        if language not in LANGUAGES:
            raise _RowError(f"examples: language {language!r} is not ru or en")
        if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
            raise _RowError(f"examples: {language}: expected a list of questions")
        texts.extend((language, question) for question in questions)
    tags = fields.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise _RowError("tags: expected a list of words")
    threshold = fields.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise _RowError(f"threshold: {threshold!r} is not a number")
    return _article(
        article_id=_text(fields.get("id"), "id"),
        title=_text(fields.get("title", ""), "title"),
        answers={str(k): _text(v, f"answers: {k}") for k, v in answers.items()},
        examples=texts,
        tags=tags,
        never_auto=_yaml_flag(fields, "never_auto", default=False),
        threshold=None if threshold is None else float(threshold),
        enabled=_yaml_flag(fields, "enabled", default=True),
    )


def _yaml_item(article: Article) -> dict[str, Any]:
    examples: dict[str, list[str]] = {language: [] for language in LANGUAGES}
    for text in article.examples:
        examples[detect_language(text) or LANGUAGES[0]].append(text)
    return {
        "id": article.id,
        "title": article.title,
        "answers": dict(article.answers),
        "examples": {language: texts for language, texts in examples.items() if texts},
        "tags": list(article.tags),
        "never_auto": article.never_auto,
        "threshold": article.threshold,
        "enabled": article.enabled,
    }


def _yaml_flag(fields: Mapping[str, Any], key: str, *, default: bool) -> bool:
    value = fields.get(key, default)
    if not isinstance(value, bool):
        raise _RowError(f"{key}: {value!r} is not true or false")
    return value


# --- CSV --------------------------------------------------------------------------------------


def _csv_rows(path: Path, text: str) -> list[Row]:
    reader = csv.reader(text.splitlines(keepends=True))
    header = next(reader, None)
    if header is None:
        return []
    header = [column.strip() for column in header]
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    missing = [column for column in ("id", "examples") if column not in header]
    if unknown or missing:
        raise KbFileError(
            [f"{path}:1: columns: unknown {unknown}, missing {missing}; expected {CSV_COLUMNS}"]
        )
    rows: list[Row] = []
    line = reader.line_num + 1
    for record in reader:
        if any(cell.strip() for cell in record):
            if len(record) != len(header):
                fields = {"": f"{len(record)} cells for {len(header)} columns"}
            else:
                fields = dict(zip(header, record, strict=True))
            rows.append(Row(line, fields))
        line = reader.line_num + 1  # a quoted cell may span lines: the next row starts here
    return rows


def _csv_article(fields: Mapping[str, str]) -> Article:
    threshold_text = fields.get("threshold", "").strip()
    try:
        threshold = float(threshold_text) if threshold_text else None
    except ValueError:
        raise _RowError(f"threshold: {threshold_text!r} is not a number") from None
    answers = {
        language: fields.get(f"answer_{language}", "")
        for language in LANGUAGES
        if fields.get(f"answer_{language}", "").strip()
    }
    examples = [(None, text) for text in _split(fields.get("examples", ""))]
    return _article(
        article_id=fields["id"],
        title=fields.get("title", ""),
        answers=answers,
        examples=examples,
        tags=_split(fields.get("tags", "")),
        never_auto=_csv_flag(fields, "never_auto", default=False),
        threshold=threshold,
        enabled=_csv_flag(fields, "enabled", default=True),
    )


def _csv_record(article: Article) -> list[str]:
    for text in (*article.examples, *article.tags):
        if SEPARATOR in text:
            raise KbFileError([f"article {article.id}: {text!r} contains {SEPARATOR!r}: use YAML"])
    return [
        article.id,
        article.title,
        article.answers.get("ru", ""),
        article.answers.get("en", ""),
        SEPARATOR.join(article.examples),
        SEPARATOR.join(article.tags),
        str(article.never_auto).lower(),
        "" if article.threshold is None else repr(article.threshold),
        str(article.enabled).lower(),
    ]


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(SEPARATOR) if part.strip()]


def _csv_flag(fields: Mapping[str, str], key: str, *, default: bool) -> bool:
    value = fields.get(key, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _RowError(f"{key}: {value!r} is not true or false")


# --- both -------------------------------------------------------------------------------------


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _RowError(f"{what}: expected text, got {value!r}")
    return str(value)


def _article(
    *,
    article_id: str,
    title: str,
    answers: Mapping[str, str],
    examples: Sequence[tuple[str | None, str]],
    tags: list[str],
    never_auto: bool,
    threshold: float | None,
    enabled: bool,
) -> Article:
    """The checks both formats share, then the Article (which checks the rest)."""
    article_id = article_id.strip()
    if len(article_id) > MAX_ID:
        raise _RowError(f"id: longer than {MAX_ID} characters")
    if len(title) > MAX_TITLE:
        raise _RowError(f"title: longer than {MAX_TITLE} characters")
    if not any(answer.strip() for answer in answers.values()):
        raise _RowError("answers: needs an answer in ru or en")
    ordered: list[tuple[int, str]] = []
    for declared, text in examples:
        text = text.strip()
        if not text:
            raise _RowError("examples: an empty question")
        language = detect_language(text)
        if language is None:
            raise _RowError(f"examples: {text!r} has no words")
        if declared is not None and language != declared:
            raise _RowError(
                f"examples: {text!r} is listed under {declared} but reads as {language}"
            )
        ordered.append((LANGUAGES.index(language), text))
    ordered.sort(key=lambda pair: pair[0])  # stable: file order within each language
    return Article(
        id=article_id,
        title=title.strip(),
        answers={language: text.strip() for language, text in answers.items() if text.strip()},
        examples=tuple(text for _, text in ordered),
        tags=tuple(tag.strip() for tag in tags if tag.strip()),
        never_auto=never_auto,
        threshold=threshold,
        enabled=enabled,
    )
