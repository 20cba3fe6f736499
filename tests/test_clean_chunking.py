"""Cleaning (views + offset maps), heading detection and section chunking.

Everything here is pure text processing: no store, no embedder, so it runs in well under a second.
"""
from __future__ import annotations

import re

import pytest

from rag.chunking import chunk_view, count_tokens
from rag.clean import clean, fold, fold_width, is_traditional, sentence_spans
from rag.headings import heading_level, heading_title
from tests.conftest import S000, S001, S002, S003, S004, ALL  # noqa: E402


_WS = re.compile(r"\s+")


def _nows(s: str) -> str:
    return _WS.sub("", s)


def _chunks(text: str, doc_id: str = "x", **kw):
    view = clean(text)
    return view, chunk_view(doc_id, view, **kw)


@pytest.fixture(scope="module")
def views(sample_texts):
    return {d: clean(t) for d, t in sample_texts.items()}


@pytest.fixture(scope="module")
def chunked(views):
    return {d: chunk_view(d, v) for d, v in views.items()}


def test_samples_fixture_has_all_five(sample_texts):
    assert sorted(sample_texts) == ALL


# ---------------------------------------------------------------------------------------------
# 1. headings
# ---------------------------------------------------------------------------------------------

KNOWN_SECTIONS = {
    S000: [
        "一、2023年主要工作 > (三)优化营商环境,服务交通运输行业发展 > 2.着力构建新型监管机制",
        "三、2024年工作思路 > 4.深入开展普法宣传和法治监督",
        # an inline "…。四是…" item inside a paragraph
        "二、存在问题 > 四是普法责任的扩面和落实还不够全",
    ],
    S001: [
        "六、依法有效化解社会矛盾纠纷 > (三)提高行政应诉工作水平",
        "四、坚持严格、规范、公正、文明执法 > (一)改革行政执法体制,完善行政执法程序 > 二是全面推行行政执法全过程记录制度",
        "八、组织保障和落实机制 > (二)加强法制机构和队伍建设",
    ],
    S002: [
        # full-width "（五）…（2）" in the source, half-width in the path
        "一、法治政府部门建设情况 > (五)坚持依法行政,严格规范公正文明执法 > 1.全面推行行政执法“三项制度” > (2)全面推行执法全过程记录制度",
        "一、法治政府部门建设情况 > (三)改革创新,丰富行业监管模式 > 二是强化信息化监管",
        "二、存在的问题及原因分析 > (二)执法保障不足",
    ],
    S003: [
        # source: "。**四是**扎实推进…" (bold markers around an inline item)
        "一、主要举措成效 > (四)着力推进行政执法“四基四化” > 四是扎实推进基层执法数字化",
        "一、主要举措成效 > (九)着力推进信访投诉化解工作",
        "三、2024 年工作思路 > (五)进一步健全“五大”机制",
    ],
    S004: [
        # traditional-script report: paths are folded to simplified
        "一、2024年行政执法基本情况 > (一)行政执法的综合效能不断提升",
        "二、行政执法规范化建设情况 > (三)狠抓执法“三项制度”的贯彻落实 > 二是以记录促管理",
        "三、2025年交通运输领域行政执法工作计划 > (三)以“严”提质,构建依法行政执法监督体系 > 9.明确职责,加强执法监督力度",
    ],
}

TOP_HEADINGS = {
    S000: ["一、2023年主要工作", "二、存在问题", "三、2024年工作思路"],
    S001: ["一、依法全面履行行政职能", "二、完善依法行政制度体系", "三、健全行政决策机制,推进行政决策科学化、民主化、法治化",
           "四、坚持严格、规范、公正、文明执法", "五、强化对行政权力的制约和监督", "六、依法有效化解社会矛盾纠纷",
           "七、全面提高法制思维和依法行政能力", "八、组织保障和落实机制"],
    S002: ["一、法治政府部门建设情况", "二、存在的问题及原因分析", "三、2024年度工作安排"],
    S003: ["一、主要举措成效", "二、存在主要问题", "三、2024 年工作思路"],
    S004: ["一、2024年行政执法基本情况", "二、行政执法规范化建设情况", "三、2025年交通运输领域行政执法工作计划"],
}


@pytest.mark.parametrize("doc_id,section", [(d, s) for d, ss in KNOWN_SECTIONS.items() for s in ss])
def test_known_section_paths(chunked, sample_texts, doc_id, section):
    chunks = chunked[doc_id]
    found = [c for c in chunks if c.section == section]
    assert found, f"{doc_id}: no chunk with section {section!r}; have {sorted({c.section for c in chunks})}"
    # The chunk that opens the section carries its heading, in the original file at [start:end].
    first = found[0]
    title = section.split(" > ")[-1].rstrip("…")
    original = sample_texts[doc_id][first.start:first.end]
    assert _nows(title) in _nows(fold(original).replace("**", ""))
    assert _nows(title) in _nows(first.text)


@pytest.mark.parametrize("doc_id", ALL)
def test_top_level_headings_found_in_order(chunked, doc_id):
    tops: list[str] = []
    for c in chunked[doc_id]:
        if c.section:
            top = c.section.split(" > ")[0]
            if top not in tops:
                tops.append(top)
    assert tops == TOP_HEADINGS[doc_id]


@pytest.mark.parametrize("doc_id", ALL)
def test_chunk_holding_top_heading_line_is_under_it(chunked, doc_id):
    """A chunk that contains a "二、…" heading line must carry that heading in its path."""
    for c in chunked[doc_id]:
        for line in c.text.split("\n"):
            if heading_level(line) == 1:
                assert c.section.split(" > ")[0] == heading_title(line), (c.ord, c.section, line)


def test_tiny_last_section_keeps_its_heading():
    text = ("青山县交通运输局2023年度法治政府建设工作报告\n"
            "2023年，青山县交通运输局坚持依法行政，现将有关情况报告如下：\n"
            "一、主要工作\n"
            "（一）规范行政执法。全年共办理行政处罚案件45件，罚没收入12.5万元，案卷合格率100%。\n"
            "（二）推进普法宣传。开展“交通法治进企业”活动8场，发放宣传资料1200份。一是强化学法用法；二是落实普法责任制。\n"
            "二、存在问题\n"
            "执法人员数量不足，信息化水平有待提高。\n")
    _, chunks = _chunks(text)
    holding = [c for c in chunks if "执法人员数量不足" in c.text]
    assert len(holding) == 1
    assert holding[0].section.split(" > ")[0] == "二、存在问题", repr(holding[0].section)


@pytest.mark.parametrize("line,level", [
    ("一、主要工作", 1),
    ("十二、其他", 1),
    ("第一部分 总体情况", 1),
    ("第三章 附则", 1),
    ("(一)加强组织领导", 2),
    ("(十一)着力推进行业普法全员化", 2),
    ("1.加强组织领导", 3),
    ("12.定期评估", 3),
    ("3、健全制度", 3),
    ("(1)全面推行行政执法公示制度", 4),
    ("(12)其他", 4),
    ("一是严格落实制度", 5),
    ("十二是加强宣传", 5),
    ("①加强学习", 5),
])
def test_heading_level_detects_headings(line, level):
    assert heading_level(line) == level


@pytest.mark.parametrize("line", [
    "3.5万元",
    "3.5万元罚款已全部缴纳",
    "11.5.14.2的规定执行",
    "1.2万平方米",
    "99.5%的案卷合格",
    "2023年,我局坚持依法行政",
    "2024 年,我局将继续",
    "12328热线",
    "100%",
    "一是否依法履职",
    "二〇二三年",
    "一年六次集体学法",
    "正文内容(一)不在行首",
    "",
])
def test_heading_level_rejects_numbers_and_body_text(line):
    assert heading_level(line) is None


@pytest.mark.parametrize("line", ["12 件行政处罚案件已全部办结", "5 万元罚没款已上缴国库"])
def test_heading_level_rejects_spaced_number_with_unit(line):
    assert heading_level(line) is None


def test_spaced_number_at_line_start_is_not_a_section():
    text = ("一、主要工作\n"
            "2023年,我局坚持严格规范公正文明执法,持续开展道路运输市场秩序专项整治,全年共查处各类交通运输违法行为,办理行政处罚案件\n"
            "12 件,罚没收入 5 万元,案件均按规定在法定期限内办结,未发生行政复议被撤销或行政诉讼败诉情况。\n")
    view, chunks = _chunks(text)
    assert "办理行政处罚案件12 件" in view.text
    assert [c.section for c in chunks] == ["一、主要工作"]


@pytest.mark.parametrize("full,half,level", [
    ("（一）加强组织领导", "(一)加强组织领导", 2),
    ("（１）全面推行", "(1)全面推行", 4),
    ("１．加强组织领导", "1.加强组织领导", 3),
])
def test_full_width_headings_fold_to_half_width(full, half, level):
    assert fold_width(full) == half
    assert heading_level(fold_width(full)) == level == heading_level(half)


def _report(open_, close, dot):
    return (f"一、主要工作\n"
            f"{open_}一{close}规范行政执法。全年共办理行政处罚案件45件，罚没收入12.5万元，案卷合格率100%，执法监督检查覆盖全部执法单位，"
            f"行政执法公示、执法全过程记录、重大执法决定法制审核三项制度全面落实。\n"
            f"{open_}二{close}推进普法宣传。\n"
            f"1{dot}开展交通法治进企业活动8场，发放宣传资料1200份，组织执法人员旁听庭审两次，开展以案释法宣讲三次，普法覆盖全县重点运输企业。\n"
            f"2{dot}落实谁执法谁普法责任制，编制年度普法责任清单，明确责任单位和完成时限，按季度通报落实情况，年终开展考核评议。\n")


def test_full_and_half_width_reports_chunk_alike():
    _, full = _chunks(_report("（", "）", "．"))
    _, half = _chunks(_report("(", ")", "."))
    sections = [c.section for c in half]
    assert [c.section for c in full] == sections
    assert "一、主要工作 > (一)规范行政执法" in sections
    assert any(s.startswith("一、主要工作 > (二)推进普法宣传 > 1.开展交通法治进企业活动8场") for s in sections)
    assert any(s.startswith("一、主要工作 > (二)推进普法宣传 > 2.落实谁执法谁普法责任制") for s in sections)


def test_inline_items_open_sub_sections():
    item = "组织局党组理论学习中心组专题学法四次,开展领导干部年度述法活动,编制年度普法责任清单,明确责任单位和完成时限,按季度通报落实情况"
    text = ("一、主要工作\n"
            f"（一）推进普法宣传。全年开展普法活动多次,覆盖全县重点运输企业,{item}。一是强化学法用法,{item};"
            f"二是落实普法责任制,{item}。三是创新普法形式,{item}。\n")
    _, chunks = _chunks(text)
    sections = [c.section for c in chunks]
    expected = ["一、主要工作 > (一)推进普法宣传",
                "一、主要工作 > (一)推进普法宣传 > 一是强化学法用法",
                "一、主要工作 > (一)推进普法宣传 > 二是落实普法责任制",
                "一、主要工作 > (一)推进普法宣传 > 三是创新普法形式"]
    assert len(sections) == len(expected) and all(s.startswith(e) for s, e in zip(sections, expected)), sections
    assert all(c.text.startswith(("一是", "二是", "三是")) for c in chunks[1:])


# ---------------------------------------------------------------------------------------------
# 2. offsets: original[start:end] is the text a chunk came from
# ---------------------------------------------------------------------------------------------

def _assert_view_map(original, view):
    assert len(view.offsets) == len(view.text)
    assert all(0 <= o < len(original) for o in view.offsets)
    assert all(a <= b for a, b in zip(view.offsets, view.offsets[1:])), "offset map not monotonic"
    for ch, o in zip(view.text, view.offsets):
        if ch != "\n":  # newlines kept between lines map to the line end
            assert ch in fold(original[o]) or ch == fold(original[o]), (ch, original[o], o)


def _assert_chunk_offsets(original, view, chunks):
    assert chunks
    prev_end = 0
    for c in chunks:
        assert 0 <= c.start < c.end <= len(original)
        assert c.start >= prev_end, "chunks overlap or go backwards"
        prev_end = c.end
        assert c.text == view.text[c.vstart:c.vend]
        assert c.text.strip()
        assert (c.start, c.end) == view.span(c.vstart, c.vend)
        offs = view.offsets[c.vstart:c.vend]
        assert offs[0] == c.start and offs[-1] == c.end - 1
        used = sorted(set(o for ch, o in zip(c.text, offs) if ch != "\n"))
        # what the chunk indexes is exactly the folded original characters it maps to ...
        kept = "".join(original[o] for o in used)
        assert _nows(fold(kept)) == _nows(c.text), (c.chunk_id, c.section)
        # ... and everything else inside original[start:end] is removable furniture: blanks, "**",
        # [bookmark:…] markers, whole boilerplate lines. Cleaning the left-out pieces leaves nothing.
        used_set = set(used)
        runs, cur = [], []
        for i in range(c.start, c.end):
            if i in used_set:
                if cur:
                    runs.append("".join(cur))
                    cur = []
            else:
                cur.append(original[i])
        if cur:
            runs.append("".join(cur))
        for run in runs:
            assert clean(run).text.strip() == "", (c.chunk_id, "dropped real text", run)


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("budget", [320, 60])
@pytest.mark.parametrize("doc_id", ALL)
def test_chunk_offsets_point_at_original(sample_texts, doc_id, budget, newline):
    original = sample_texts[doc_id].replace("\n", newline)
    view = clean(original)
    _assert_view_map(original, view)
    chunks = chunk_view(doc_id, view, budget=budget)
    _assert_chunk_offsets(original, view, chunks)
    # nothing of the view is lost or repeated between chunks
    assert "".join(_nows(c.text) for c in chunks) == _nows(view.text)
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    assert all(c.chunk_id.startswith(f"{doc_id}:{i}") and c.doc_id == doc_id for i, c in enumerate(chunks))
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_chunks_quote_the_traditional_original(sample_texts, chunked):
    original = sample_texts[S004]
    c = next(c for c in chunked[S004] if "罚没收入327万元" in c.text)
    quoted = original[c.start:c.end]
    assert "罰沒收入327萬元" in quoted
    assert fold(quoted).count("罚没收入327万元") == 1


def test_span_and_to_view_are_inverse(views, sample_texts):
    view = views[S001]
    original = sample_texts[S001]
    i = original.index("行政机关负责人出庭率达100%")
    vs, ve = view.to_view(i, i + len("行政机关负责人出庭率达100%"))
    assert view.text[vs:ve] == "行政机关负责人出庭率达100%"
    assert view.span(vs, ve) == (i, i + len("行政机关负责人出庭率达100%"))


# ---------------------------------------------------------------------------------------------
# 3. numbers stay with their units
# ---------------------------------------------------------------------------------------------

_UNITS = "万亿千百元件个起项次人余条家场份名辆吨公里米年月日天倍户台套批篇期宗%"
_NUM_UNIT = re.compile(r"\d+(?:\.\d+)? ?(?:万|亿)?余?(?:平方米|公里|人次|条次|个百分点|[元件个起项次人条家场份名辆吨米倍户台套批篇宗张%])")


def _assert_numbers_whole(view, chunks):
    for a, b in zip(chunks, chunks[1:]):
        assert not (re.search(r"[\d.]$", a.text) and re.match(rf"[\d.{_UNITS}]", b.text)), \
            (a.chunk_id, a.text[-15:], b.text[:15])
    for m in _NUM_UNIT.finditer(view.text):
        inside = [c for c in chunks if c.vstart <= m.start() and m.end() <= c.vend]
        assert inside, f"{m.group()!r} split across chunks"


@pytest.mark.parametrize("doc_id", ALL)
def test_numbers_never_split_from_units_small_budget(views, doc_id):
    view = views[doc_id]
    chunks = chunk_view(doc_id, view, budget=60)
    assert len(chunks) > len(chunk_view(doc_id, view)), "budget 60 should force extra splits"
    assert max(count_tokens(c.text) for c in chunks) > 30
    _assert_numbers_whole(view, chunks)


def test_numbers_whole_in_long_comma_free_sentence_with_common_units():
    text = ("一、基本情况\n本年度共办理行政许可160件行政确认3020件行政处罚776件罚没收入327万元同比增长12%"
            "执法人员参加培训1500人次案卷合格率达到99.5%罚没款全部上缴国库。\n")
    view, chunks = _chunks(text, budget=20)
    assert len(chunks) > 2
    _assert_numbers_whole(view, chunks)


def test_numbers_whole_with_multi_char_units():
    body = ("完成货运量12.5万吨新建农村公路86.4公里改造桥梁1.2万平方米培训执法人员1500人次"
            "案卷合格率达到99.5%同比提高3个百分点投入资金2.3亿元")
    view, chunks = _chunks("一、基本情况\n" + body * 3 + "。\n", budget=60)
    _assert_numbers_whole(view, chunks)


def test_number_not_split_at_page_break_in_heading_led_paragraph():
    text = ("一、基本情况\n"
            "（一）行政执法效能提升。本年度,我局严格遵循审批流程与标准办理行政许可事项,共办理行政许可160\n\n"
            "件,行政确认3020件,通过优化执法流程、提升执法效率、加强执法监督,教育引导执法人员更好把握执法尺度。\n")
    view, chunks = _chunks(text, budget=60)
    _assert_numbers_whole(view, chunks)


# ---------------------------------------------------------------------------------------------
# 5. cleaning
# ---------------------------------------------------------------------------------------------

BOILERPLATE = {
    S000: ["当前位置", "索引号", "访问次数", "发布机构", "组配分类", "发布时间", "信息来源", "公开方式"],
    S001: ["打印本页", "关闭窗口", "Produced By", "主题分类"],
    S004: ["发布时间", "www.", "全部留言", "有用(", "评论"],
}


@pytest.mark.parametrize("doc_id", sorted(BOILERPLATE))
def test_boilerplate_removed(sample_texts, views, doc_id):
    folded_original = fold(sample_texts[doc_id])
    for marker in BOILERPLATE[doc_id]:
        assert marker in folded_original  # the test means something
        assert marker not in views[doc_id].text, marker


@pytest.mark.parametrize("doc_id", ALL)
def test_inline_markers_removed(sample_texts, views, doc_id):
    v = views[doc_id].text
    assert "**" not in v and "[bookmark" not in v and "&nbsp;" not in v
    assert "\u3000" not in v and "\ufeff" not in v


def test_views_are_width_and_script_folded(views):
    assert views[S004].text.startswith("湘乡市交通运输局2024年行政执法工作报告")
    assert "罚没收入327万元" in views[S004].text
    assert "(一)党政主要负责人" in views[S002].text and "（" not in views[S002].text
    assert not is_traditional(views[S004].text)


def test_is_traditional(sample_texts):
    assert is_traditional(sample_texts[S004])
    assert not any(is_traditional(sample_texts[d]) for d in (S000, S001, S002, S003))


def test_breaks_kept_between_headings_and_paragraphs(views):
    assert "一、主要举措成效\n(一)着力推进习近平法治思想宣贯" in views[S003].text
    assert "六、依法有效化解社会矛盾纠纷\n(一)健全依法化解纠纷机制" in views[S001].text


def test_body_paragraph_broken_mid_sentence_is_joined():
    text = ("2023年,在县委县政府的坚强领导下,我局坚持以习近平新时代中国特色社会主义思想为指导,全面贯彻落实法治思想,不断提升理解能力\n\n"
            "和执行能力,依法行政,认真履职。现将年度工作报告如下:\n"
            "一、主要工作\n")
    view = clean(text)
    assert "理解能力和执行能力" in view.text
    assert "如下:\n一、主要工作" in view.text


def test_003_broken_line_is_joined(views):
    assert "理解能力和执行能力" in views[S003].text


def test_003_broken_inline_item_is_joined(views, chunked):
    assert "四是要推动以改革创新能力提升" in views[S003].text
    assert not any(c.section.endswith("四是要推") for c in chunked[S003])


def test_sentence_spans():
    text = "第一句。第二句!“第三句。”\n第四句"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["第一句。", "第二句!", "“第三句。”", "第四句"]


def test_clean_of_pure_boilerplate_is_empty():
    text = "当前位置: |\n索引号: | 123 |\n访问次数:\n打印本页 关闭窗口\nProduced By 大汉网络\n2024-01-30\n"
    assert clean(text).text == ""
