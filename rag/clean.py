"""Views of a report with offset maps back to the original text.

Cleaning is for indexing, never for quoting: every view character remembers the original
character it came from, so any span of the view maps to an exact `original[start:end]`.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from .headings import heading_level

# Header-table labels and page furniture of government portals.
_BOILER_LINE = re.compile(
    r"^(?:当前位置|您的位置|索引号|发布机构|组配分类|文件编码|主题分类|公开方式|公开范围|发文日期|发布日期|发布时间|成文日期|"
    r"信息来源|来源:|访问次数|浏览次数|点击数|阅读次数|字号|【?字体|作者:|责任编辑|分享到|打印本页|关闭窗口|"
    r"\[?打印|【打印|【关闭|上一篇|下一篇|版权所有|网站地图|主办单位|承办单位|扫一扫|Produced By|"
    r"-\s*(?:全部留言|/|评论|有用\(\d*\))\s*$)"
)
_JUNK_LINE = re.compile(
    r"^(?:[|\s:]*|[\d\-/]+|\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?|主动公开|依申请公开|不予公开)$"
)
_PORTAL_LINE = re.compile(r"(?:www\.|https?://|门户网站|ICP备|公网安备).*|.*(?:发布时间|发布日期)[::]\s*\d{4}")
_INLINE_JUNK = re.compile(r"\*\*|\[bookmark:[^\]]*\]|&nbsp;")
_BOLD_LINE = re.compile(r"^\s*\*\*(.+?)\*\*\s*$")
# A line that ends like this finished its sentence; anything else was broken by the page.
_TERMINAL = set("。!?;:")
_STRIP = " \t\r\u3000\ufeff\u00a0"


@dataclass
class View:
    text: str
    offsets: list[int]  # offsets[i]: original index of text[i]
    bold_starts: set[int] = field(default_factory=set)  # view offsets of lines that were bold in the source

    def span(self, vstart: int, vend: int) -> tuple[int, int]:
        """Original [start, end) covered by view [vstart, vend)."""
        if vend <= vstart:
            o = self.offsets[vstart] if vstart < len(self.offsets) else (self.offsets[-1] + 1 if self.offsets else 0)
            return o, o
        return self.offsets[vstart], self.offsets[vend - 1] + 1

    def to_view(self, start: int, end: int) -> tuple[int, int]:
        """View [vstart, vend) covering original [start, end) (inverse of span, for spans found in the original)."""
        import bisect

        vs = bisect.bisect_left(self.offsets, start)
        ve = bisect.bisect_left(self.offsets, end)
        return vs, ve


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def fold_width(s: str) -> str:
    return unicodedata.normalize("NFKC", s)


def to_simplified(s: str) -> str:
    return _t2s().convert(s)


def to_traditional(s: str) -> str:
    return _s2t().convert(s)


def fold(s: str) -> str:
    """Fold a query or snippet the same way views are folded: width, then script."""
    return to_simplified(fold_width(s))


def is_traditional(text: str) -> bool:
    sample = text[:5000]
    simp = to_simplified(sample)
    changed = sum(1 for a, b in zip(sample, simp) if a != b)
    return changed > max(5, len(sample) // 200)


def _fold_chars(chars: list[str], offs: list[int]) -> tuple[list[str], list[int]]:
    out_c: list[str] = []
    out_o: list[int] = []
    for c, o in zip(chars, offs):
        n = unicodedata.normalize("NFKC", c) if not c.isascii() else c
        for x in n:
            out_c.append(x)
            out_o.append(o)
    return out_c, out_o


def _simplify_inplace(chars: list[str]) -> list[str]:
    text = "".join(chars)
    conv = to_simplified(text)
    if len(conv) == len(text):
        return list(conv)
    # Phrase conversions that change length are rare; fall back to one character at a time.
    return [x if len(x := to_simplified(c)) == 1 else c for c in chars]


def _lines(text: str):
    pos = 0
    for line in text.splitlines(keepends=True):
        yield pos, line.rstrip("\r\n")
        pos += len(line)


def _is_boilerplate(folded: str) -> bool:
    return bool(_BOILER_LINE.match(folded) or _JUNK_LINE.match(folded) or _PORTAL_LINE.match(folded))


def clean(original: str) -> View:
    """The indexing view: boilerplate dropped, broken lines joined, width and script folded."""
    kept: list[tuple[list[str], list[int], bool]] = []  # (chars, offsets, was_bold)
    for start, raw in _lines(original):
        bold = bool(_BOLD_LINE.match(raw))
        chars: list[str] = []
        offs: list[int] = []
        pos = 0
        for m in _INLINE_JUNK.finditer(raw):
            chars.extend(raw[pos : m.start()])
            offs.extend(range(start + pos, start + m.start()))
            pos = m.end()
        chars.extend(raw[pos:])
        offs.extend(range(start + pos, start + len(raw)))
        # strip surrounding blanks
        i, j = 0, len(chars)
        while i < j and chars[i] in _STRIP:
            i += 1
        while j > i and chars[j - 1] in _STRIP:
            j -= 1
        chars, offs = chars[i:j], offs[i:j]
        if not chars:
            continue
        chars, offs = _fold_chars(chars, offs)
        folded = to_simplified("".join(chars))
        if _is_boilerplate(folded):
            continue
        kept.append((chars, offs, bold))

    out_c: list[str] = []
    out_o: list[int] = []
    bold_starts: set[int] = set()
    prev = ""
    for chars, offs, bold in kept:
        line = "".join(chars)
        if out_c:
            if _keeps_break(prev, line):
                out_c.append("\n")
                out_o.append(out_o[-1] + 1)  # the newline after the previous line's last char
        if bold:
            bold_starts.add(len(out_c))
        out_c.extend(chars)
        out_o.extend(offs)
        prev = line
    out_c = _simplify_inplace(out_c)
    return View("".join(out_c), out_o, bold_starts)


def _keeps_break(prev: str, line: str) -> bool:
    if prev[-1] in _TERMINAL or heading_level(line) is not None:
        return True
    # A heading line ends its line; a paragraph that merely starts with a heading marker can still be
    # broken mid-sentence by the page ("(一)…理解能力\n\n和执行能力").
    if heading_level(prev) is not None and len(prev) <= 40:
        return True
    # Short lines and unpunctuated ones are titles, letterheads and header cells, not paragraphs
    # broken by the page (those run long and carry commas).
    return len(prev) < 30 or (len(prev) < 60 and not any(p in prev for p in ",。;"))


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentences of a view as [start, end) spans: split after 。!?; and at line ends."""
    end = len(text) if end is None else min(end, len(text))
    spans = []
    s = start
    i = start
    while i < end:
        c = text[i]
        if c in "。!?;\n":
            j = i + 1
            # keep a closing quote or bracket with its sentence
            while j < end and text[j] in "”’」』)":
                j += 1
            if c == "\n":
                if i > s:
                    spans.append((s, i))
            else:
                spans.append((s, j))
            s = j
            i = j
            continue
        i += 1
    if s < end and text[s:end].strip():
        spans.append((s, end))
    # trim blanks at the edges of each sentence
    out = []
    for a, b in spans:
        while a < b and text[a] in " \n\t":
            a += 1
        while b > a and text[b - 1] in " \n\t":
            b -= 1
        if b > a:
            out.append((a, b))
    return out
