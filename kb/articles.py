"""A knowledge-base article: what the bot may answer, and the questions it answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kb.language import LANGUAGES


class ArticleError(ValueError):
    """An article that cannot be used as it is, with the reason."""


@dataclass(frozen=True)
class Article:
    id: str
    title: str = ""
    answers: Mapping[str, str] = field(default_factory=dict)
    examples: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    never_auto: bool = False
    threshold: float | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ArticleError("article id: must not be empty")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ArticleError(f"article {self.id}: threshold {self.threshold} is not in [0, 1]")
        unknown = sorted(set(self.answers) - set(LANGUAGES))
        if unknown:
            raise ArticleError(f"article {self.id}: answer languages {unknown} are not ru or en")
        if not any(example.strip() for example in self.examples):
            raise ArticleError(f"article {self.id}: needs at least one example question")

    def answer_for(self, language: str | None) -> str | None:
        """The answer in the customer's language, else in the other one, else None."""
        if language is not None and language in self.answers:
            return self.answers[language]
        return next(iter(self.answers.values()), None)
