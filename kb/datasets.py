"""Labelled question sets: CSV files with the columns `text,label` (`oos`: no article answers)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kb.articles import Article

OOS_LABEL = "oos"
COLUMNS = ("text", "label")


class DatasetError(ValueError):
    """A question set that cannot be read; `problems` holds one line per bad row."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class LabelledQuestion:
    text: str
    label: str

    @property
    def in_scope(self) -> bool:
        return self.label != OOS_LABEL


def read_labelled_csv(path: str | Path) -> list[LabelledQuestion]:
    """Every row of the file, or a DatasetError naming each bad row by its line number."""
    path = Path(path)
    questions: list[LabelledQuestion] = []
    problems: list[str] = []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(cell.strip() for cell in header) != COLUMNS:
                found = ",".join(header) if header else "nothing"
                raise DatasetError(path, [f"line 1: header must be `text,label`, found `{found}`"])
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                problem = _row_problem(row)
                if problem:
                    problems.append(f"line {line}: {problem}")
                else:
                    questions.append(LabelledQuestion(row[0].strip(), row[1].strip()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(path, [str(exc)]) from exc
    if problems:
        raise DatasetError(path, problems)
    if not questions:
        raise DatasetError(path, ["no questions after the header"])
    return questions


def _row_problem(row: Sequence[str]) -> str | None:
    if len(row) != len(COLUMNS):
        return f"{len(row)} columns, expected {len(COLUMNS)}"
    if not row[0].strip():
        return "empty text"
    if not row[1].strip():
        return "empty label"
    return None


def articles_from_questions(questions: Iterable[LabelledQuestion]) -> list[Article]:
    """One article per label, its rows as example questions; `oos` rows are not articles."""
    examples: dict[str, list[str]] = {}
    for question in questions:
        if question.in_scope:
            examples.setdefault(question.label, []).append(question.text)
    return [
        Article(id=label, title=label, examples=tuple(texts)) for label, texts in examples.items()
    ]
