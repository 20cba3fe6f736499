"""Section chunking: heading tree, then chunks under a token budget, each with its heading path."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .clean import View, sentence_spans
from .config import TOKEN_ENCODING
from .headings import BOLD_LEVEL, INLINE_ITEMS, heading_level, heading_title


@dataclass
class Chunk:
    chunk_id: str
    doc_id: str
    ord: int
    section: str  # heading path, "二、严格规范执法 > (三)…"
    vstart: int
    vend: int
    start: int  # original [start, end)
    end: int
    text: str  # view text (folded), what gets indexed


@dataclass
class _Segment:
    path: tuple[str, ...]
    vstart: int
    vend: int
    heading_only: bool


@lru_cache(maxsize=1)
def _encoding():
    import tiktoken

    return tiktoken.get_encoding(TOKEN_ENCODING)


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def _segments(view: View) -> list[_Segment]:
    text = view.text
    # heading starts: (view offset, level, title)
    heads: list[tuple[int, int, str]] = []
    pos = 0
    for line in text.split("\n"):
        level = heading_level(line)
        if level is None and pos in view.bold_starts and len(line) <= 60:
            level = BOLD_LEVEL
        if level is not None:
            heads.append((pos, level, heading_title(line)))
        # inline enumerations "…。一是…;二是…" open sub-sections inside the paragraph
        for ilevel, pat in INLINE_ITEMS:
            for m in pat.finditer(line):
                heads.append((pos + m.end(), ilevel, heading_title(line[m.end():])))
        pos += len(line) + 1
    heads.sort()
    segs: list[_Segment] = []
    stack: list[tuple[int, str]] = []
    if not heads or heads[0][0] > 0:
        segs.append(_Segment((), 0, heads[0][0] if heads else len(text), False))
    for i, (start, level, title) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        body = text[start:end].strip()
        segs.append(_Segment(tuple(t for _, t in stack), start, end, heading_only=len(body) <= len(title) + 2))
    return [s for s in segs if text[s.vstart:s.vend].strip()]


# A cut by length keeps clear of numbers: units run up to a few characters ("1.2万平方米", "86.4公里").
_NEAR_NUMBER = re.compile(r"\d[^\d]{0,3}$")


def _split_long(text: str, a: int, b: int, budget: int) -> list[tuple[int, int]]:
    """Split [a, b) at sentence ends under the budget; a sentence longer than the budget splits at commas."""
    pieces: list[tuple[int, int]] = []
    for s, e in sentence_spans(text, a, b):
        if count_tokens(text[s:e]) <= budget:
            pieces.append((s, e))
            continue
        cur = s
        for m in re.finditer(r"[,、]", text[s:e]):
            cut = s + m.end()
            if count_tokens(text[cur:cut]) > budget and cur < cut:
                pieces.append((cur, cut))
                cur = cut
        # A clause still over budget: cut by length, never between a number and its unit.
        while count_tokens(text[cur:e]) > budget:
            cut = cur + max(budget // 2, 1)
            while cut < e and (_NEAR_NUMBER.search(text[cur:cut]) or text[cut].isdigit() or text[cut] in ".%"):
                cut += 1
            pieces.append((cur, cut))
            cur = cut
        if cur < e:
            pieces.append((cur, e))
    # pack consecutive pieces up to the budget
    packed: list[tuple[int, int]] = []
    for s, e in pieces:
        if packed and count_tokens(text[packed[-1][0]:e]) <= budget:
            packed[-1] = (packed[-1][0], e)
        else:
            packed.append((s, e))
    return packed


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _merge_small(segs: list[_Segment], text: str, min_tokens: int) -> list[_Segment]:
    """Fold heading-only and tiny segments into a neighbour under the same parent.

    A heading-only parent joins its first child (the child's path already names it); tiny siblings
    join each other under their common parent's path.
    """
    def small(s: _Segment) -> bool:
        return s.heading_only or count_tokens(text[s.vstart:s.vend]) < min_tokens

    out: list[_Segment] = []
    for seg in segs:
        prev = out[-1] if out else None
        if prev is not None and small(prev) and prev.vend == seg.vstart:
            if (prev.heading_only or not prev.path) and seg.path[: len(prev.path)] == prev.path:
                # a heading joins its first child, and a short preamble (title, letterhead) the first section
                out[-1] = _Segment(seg.path, prev.vstart, seg.vend, seg.heading_only)
                continue
            # tiny siblings share a parent; top-level sections ("二、存在问题") stay chunks of their own
            if len(prev.path) >= 2 and len(_common(prev.path, seg.path)) >= len(prev.path) - 1:
                out[-1] = _Segment(_common(prev.path, seg.path), prev.vstart, seg.vend, False)
                continue
        if prev is not None and small(seg) and not seg.heading_only and prev.vend == seg.vstart \
                and len(seg.path) >= 2 and len(_common(prev.path, seg.path)) >= len(seg.path) - 1:
            out[-1] = _Segment(_common(prev.path, seg.path), prev.vstart, seg.vend, False)
            continue
        out.append(seg)
    return out


def chunk_view(doc_id: str, view: View, budget: int = 320, min_tokens: int = 40) -> list[Chunk]:
    text = view.text
    segs = _segments(view)
    merged = _merge_small(segs, text, min_tokens)
    chunks: list[Chunk] = []
    for seg in merged:
        for s, e in _split_long(text, seg.vstart, seg.vend, budget):
            start, end = view.span(s, e)
            n = len(chunks)
            chunks.append(Chunk(f"{doc_id}:{n}", doc_id, n, " > ".join(seg.path), s, e, start, end, text[s:e]))
    return chunks
