"""Chinese report heading patterns (一、 （一） 1. （1） 一是 ①), shared by cleaning and chunking.

Patterns run on the width-folded view, so full-width brackets and digits are already ASCII.
"""
from __future__ import annotations

import re

CN_NUM = "[一二三四五六七八九十百零〇]{1,3}"

# (level, pattern). Order matters: the first match wins.
HEADING_PATTERNS: list[tuple[int, re.Pattern]] = [
    (1, re.compile(rf"^(?:第{CN_NUM}[部分章节篇]+|{CN_NUM}、)")),
    (2, re.compile(rf"^\({CN_NUM}\)")),
    # "1." but not "3.5万元" or "11.5.14.2的…": a digit after the dot means a number, not a heading.
    # "1 加强…" counts, "12 件行政处罚案件…" and "5 万元…" (numbers written with spaces) do not.
    (3, re.compile(r"^\d{1,2}(?:、|\.(?!\d)|\s(?![\s\d.%]|[万亿千百元件个起项次人名家条份台辆户场期吨米里]))")),
    (4, re.compile(r"^\(\d{1,2}\)")),
    (5, re.compile(rf"^(?:{CN_NUM}是(?!否)|[①-⑳])")),
]
BOLD_LEVEL = 6

# Enumerations written inside a paragraph ("…。一是严格落实…。二是…", "…。(2)全面推行…") start a
# sub-section too.
INLINE_ITEMS: list[tuple[int, re.Pattern]] = [
    (4, re.compile(r"(?<=[。;!?])\s*(?=\(\d{1,2}\)[^\d)])")),
    (5, re.compile(rf"(?<=[。;!?])\s*(?={CN_NUM}是(?!否))")),
]

_TITLE_END = re.compile(r"[。;:!?]")


def heading_level(line: str) -> int | None:
    for level, pat in HEADING_PATTERNS:
        if pat.match(line):
            return level
    return None


def heading_title(line: str, max_len: int = 40) -> str:
    """The heading part of a line that may run on into body text ("(四)加强市场监管。针对…")."""
    line = line.strip()
    m = _TITLE_END.search(line)
    if m and m.start() <= max_len:
        return line[: m.start()]
    if len(line) <= max_len:
        return line
    cut = max((line.rfind(p, 0, max_len) for p in ",、"), default=-1)
    return line[: cut if cut > 4 else max_len] + "…"
