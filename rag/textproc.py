"""Tokenising folded text for the lexical index and for question key terms (jieba)."""
from __future__ import annotations

import logging
import re
from functools import lru_cache

_PUNCT = re.compile(r"^[\s\W_]+$")
STOPWORDS = frozenset(
    "的 了 和 与 及 或 在 是 为 对 等 中 年 我 局 共 有 多少 几 什么 哪些 哪个 哪 如何 怎么 怎样 是否 请问 吗 呢 啊 "
    "其中 以及 进行 开展 工作 情况 方面 一个 这个 那个 这些 那些 之 其 被 把 将 从 到 由 于 以 并 也 都 就 而 "
    "报告 本年度 全年 年度 请 告诉 我们 你 他们 它 达到 达 是 多 少 分别 各自 各 一共 总共 共计 单位 哪些 具体 提到 提及 说到 谈到 报告中".split()
)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search-mode segmentation of folded text: words plus their sub-words, no punctuation."""
    return [t for t in _jieba().cut_for_search(text.lower()) if t.strip() and not _PUNCT.match(t)]


def key_terms(text: str) -> list[str]:
    """Content words of a question, stop words dropped, order kept, no repeats."""
    seen: dict[str, None] = {}
    for t in _jieba().cut(text.lower()):
        t = t.strip()
        if t and not _PUNCT.match(t) and t not in STOPWORDS and not re.fullmatch(r"\d{1,3}", t):
            seen.setdefault(t, None)
    return list(seen)
