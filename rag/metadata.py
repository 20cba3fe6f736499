"""Report metadata read from the header and body: agency, region, level, year, type, dates, title."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass

from .clean import fold

PLACE_SUFFIX = "省市区县州旗盟"
ORG_SUFFIX = r"(?:局|厅|委员会|委|办公室|办|中心|署|院|政府)"
_REPORT_TYPES = [
    # (normalised type, what the title or header says)
    ("行政执法工作报告", re.compile(r"行政执法.*(?:报告|总结)")),
    ("法治政府建设年度报告", re.compile(r"法治(?:政府|建设|交通).*(?:报告|总结)|依法行政.*(?:报告|总结)")),
]
_HEADER_VALUE = re.compile(r"(发布机构|信息来源|来源)[:|\s]+\|?\s*([\u4e00-\u9fff]{2,30})")
_HEADER_DATE = re.compile(r"(?:发文日期|发布时间|发布日期|成文日期)[:|\s]+\|?\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})")
_CN_DATE_LINE = re.compile(r"^\s*(\d{4})年(\d{1,2})月(\d{1,2})日(?:印发)?\s*$", re.M)
_DOC_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,10}[〔\[【(]\d{4}[〕\]】)]\d{1,4}号")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")


@dataclass
class ReportMeta:
    title: str = ""
    agency: str = ""
    region: str = ""
    level: str = ""
    year: int | None = None
    report_type: str = ""
    doc_number: str = ""
    published: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _head_lines(text: str, n: int = 25) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[:n]


def split_place(name: str) -> tuple[list[str], str]:
    """'绍兴市柯桥区交通运输局' -> (['绍兴市', '柯桥区'], '交通运输局')."""
    places: list[str] = []
    rest = name
    while True:
        # a place unit is 1-4 characters plus a place suffix; prefer the shortest that leaves an org behind
        m = re.match(rf"([\u4e00-\u9fff]{{1,4}}?[{PLACE_SUFFIX}])(?=[\u4e00-\u9fff]{{2,}})", rest)
        if not m or (places and len(m.group(1)) < 3):
            break
        places.append(m.group(1))
        rest = rest[m.end():]
    return places, rest


def _title(lines: list[str]) -> str:
    for i, ln in enumerate(lines):
        if "报告" in ln and "|" not in ln and ":" not in ln and len(ln) <= 80 and not ln.startswith(("根据", "现将")):
            title = re.sub(r"\s+", "", ln)
            prev = lines[i - 1] if i else ""
            if prev and re.search(ORG_SUFFIX + r"$", prev) and len(prev) <= 20 and prev not in title:
                title = prev + title
            return title
    return ""


def _issuer(lines: list[str], title: str) -> str:
    if title:
        m = re.match(rf"^([\u4e00-\u9fff]{{2,30}}?{ORG_SUFFIX})(?=关于|\d{{4}}|[\u4e00-\u9fff]*报告)", title)
        if m:
            return m.group(1)
    for ln in lines:
        m = re.match(rf"^([\u4e00-\u9fff]{{2,30}}{ORG_SUFFIX})文件$", ln)
        if m:
            return m.group(1)
    for ln in lines:
        m = _HEADER_VALUE.search(ln)
        if m and re.search(ORG_SUFFIX + "$", m.group(2)):
            return m.group(2)
    return ""


def _complete_place(org: str, body: str) -> str:
    """A header that says only '区交通运输局' gets its place from the body ('柯桥区')."""
    level_char = org[0]
    full = re.findall(rf"([\u4e00-\u9fff]{{2,12}}){re.escape(org)}", body)
    for f in full:
        places, _ = split_place(f + org)
        if places and places[-1].endswith(level_char) and len(places[-1]) > 1:
            return places[-1] + org[1:]
    counts = Counter()
    for n in (2, 3):
        counts.update(re.findall(rf"(?<![{PLACE_SUFFIX}])([\u4e00-\u9fff]{{{n}}}){level_char}", body))
    stop = set("在和的与及对了是为县市区省局委")
    for cand, _ in counts.most_common():
        if not (set(cand) & stop):
            return cand + org
    return org


def extract_metadata(original: str) -> ReportMeta:
    text = fold(original)
    lines = _head_lines(text)
    meta = ReportMeta()
    meta.title = _title(lines)
    issuer = _issuer(lines, meta.title)
    if issuer and (issuer[0] in PLACE_SUFFIX):
        issuer = _complete_place(issuer, text)
    places, org = split_place(issuer) if issuer else ([], "")
    if places:
        meta.region = places[-1]
        meta.agency = places[-1] + org
        suffix = places[-1][-1]
        meta.level = "省" if suffix == "省" or places[-1].endswith("自治区") else "市" if suffix in "市州盟" else "区县"
    else:
        meta.agency = issuer
    # The year the report is about: the title's, else the one the body opens with ("2023年,…").
    years = _YEAR.findall(meta.title)
    if not years:
        body_start = "\n".join(ln for ln in lines if "|" not in ln and ":" not in ln[:6])
        m = re.search(r"(?:^|\n)\s*((?:19|20)\d{2})年", body_start)
        years = [m.group(1)] if m else [Counter(_YEAR.findall(text)).most_common(1)[0][0]] if _YEAR.search(text) else []
    meta.year = int(years[0]) if years else None
    kind_text = meta.title + " " + " ".join(ln for ln in lines if "组配分类" in ln or "主题分类" in ln)
    for name, pat in _REPORT_TYPES:
        if pat.search(kind_text):
            meta.report_type = name
            break
    if not meta.title and meta.agency and meta.year:
        meta.title = f"{meta.agency}{meta.year}年度{meta.report_type or '工作报告'}"
    # Only a number standing on its own line is the report's own; numbers in the body cite other documents.
    meta.doc_number = next((ln for ln in lines if _DOC_NUMBER.fullmatch(ln)), "")
    m = _HEADER_DATE.search(text) or _CN_DATE_LINE.search(text[-600:])
    if m:
        y, mo, d = m.groups()
        meta.published = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    return meta
