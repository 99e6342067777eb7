"""`supportbridge bench kb`: query latency, index memory and fit time on a synthetic knowledge base.

The KB is made up (no data set is that large): articles are topics of pseudo-words in Latin and
Cyrillic script, their examples and the queries mix topic words with common filler words, and one
query in five carries a typo. With an embedding backend, the examples are embedded first (timed
apart, as the store keeps their vectors) and every query is embedded as it is asked.
"""

from __future__ import annotations

import json
import time

import numpy as np
import psutil

from kb.articles import Article
from kb.embedding.base import Embedder
from kb.matcher import Matcher

_LATIN = "bcdfghklmnprstvz"
_CYRILLIC = "бвгдзклмнпрстфх"
_VOWELS = {"latin": "aeiou", "cyrillic": "аеиоуя"}


def _vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        cyrillic = rng.random() < 0.5
        consonants, vowels = (
            (_CYRILLIC, _VOWELS["cyrillic"]) if cyrillic else (_LATIN, _VOWELS["latin"])
        )
        syllables = int(rng.integers(2, 4))
        words.add(
            "".join(
                str(rng.choice(list(consonants))) + str(rng.choice(list(vowels)))
                for _ in range(syllables)
            )
        )
    return sorted(words)


def _question(rng: np.random.Generator, topic: list[str], filler: list[str], typo: bool) -> str:
    words = list(rng.choice(topic, size=3, replace=False)) + list(
        rng.choice(filler, size=int(rng.integers(3, 7)))
    )
    rng.shuffle(words)
    if typo:
        word = words[0]
        cut = int(rng.integers(0, len(word)))
        words[0] = word[:cut] + word[cut + 1 :]
    return " ".join(str(word) for word in words)


def synthetic_kb(
    articles: int, examples: int = 5, seed: int = 0
) -> tuple[list[Article], list[list[str]]]:
    rng = np.random.default_rng(seed)
    vocabulary = _vocabulary(rng, 30_000)
    filler, content = vocabulary[:300], vocabulary[300:]
    topics = [list(rng.choice(content, size=6, replace=False)) for _ in range(articles)]
    kb = [
        Article(
            id=f"a{n}",
            title=f"article {n}",
            answers={"en": "answer", "ru": "ответ"},
            examples=tuple(_question(rng, topic, filler, typo=False) for _ in range(examples)),
        )
        for n, topic in enumerate(topics)
    ]
    return kb, [[str(word) for word in topic] for topic in topics]


def run_kb_bench(
    articles: int = 10000, queries: int = 2000, embedder: Embedder | None = None
) -> dict[str, object]:
    rng = np.random.default_rng(1)
    kb, topics = synthetic_kb(articles)
    filler = sorted({w for a in kb[:50] for text in a.examples for w in text.split()})
    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    examples = sorted({text for article in kb for text in article.examples})
    known = (
        dict(zip(examples, embedder.embed(examples), strict=True)) if embedder is not None else {}
    )
    embed_s = time.perf_counter() - started
    started, cpu_started = time.perf_counter(), time.process_time()
    matcher = Matcher.fit(kb, embedder=embedder, known_vectors=known)
    fit_s, fit_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    rss_after = process.memory_info().rss
    targets = rng.integers(0, articles, size=queries)
    texts = [_question(rng, topics[t], filler, typo=rng.random() < 0.2) for t in targets]
    for text in texts[:50]:
        matcher.match(text)
    latency_ms = []
    right = 0
    for target, text in zip(targets, texts, strict=True):
        began = time.perf_counter()
        best = matcher.match(text, k=3)[0]
        latency_ms.append((time.perf_counter() - began) * 1000)
        right += best.article_id == f"a{target}"
    result: dict[str, object] = {
        "embeddings": matcher.embedder_name,
        "articles": articles,
        "examples": sum(len(a.examples) for a in kb),
        "queries": queries,
        "query_ms_p50": round(float(np.percentile(latency_ms, 50)), 3),
        "query_ms_p99": round(float(np.percentile(latency_ms, 99)), 3),
        "index_mb": round(matcher.nbytes / 2**20, 1),
        "process_rss_growth_mb": round((rss_after - rss_before) / 2**20, 1),
        "embed_s": round(embed_s, 1),
        "fit_s": round(fit_s, 1),
        # the process's own CPU time: what the fit costs whatever else the machine is doing
        "fit_cpu_s": round(fit_cpu_s, 1),
        "top1_accuracy": round(right / queries, 3),
    }
    print(json.dumps(result), flush=True)
    return result
