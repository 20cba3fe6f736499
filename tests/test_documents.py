"""Reading report files (bytes -> original text) and report metadata."""
from __future__ import annotations

import codecs
import hashlib
import random
from pathlib import Path

import pytest

from rag import GovqaError
from rag.documents import decode_bytes, expand_paths, load_document, sample_paths
from rag.metadata import extract_metadata, split_place

S000 = "000_dd66ffd76b4a3192"
S001 = "001_6abc9caa6ce6874c"
S002 = "002_7d80a77d3b41ec6f"
S003 = "003_7c2a89f2d6290ff3"
S004 = "004_85ab2a4bf3520aa2"

TINY = ("青山县交通运输局2023年度法治政府建设工作报告\n"
        "2023年，青山县交通运输局坚持依法行政，现将有关情况报告如下：\n"
        "一、主要工作\n"
        "（一）规范行政执法。全年共办理行政处罚案件45件，罚没收入12.5万元，案卷合格率100%。\n"
        "（二）推进普法宣传。开展“交通法治进企业”活动8场，发放宣传资料1200份。\n"
        "二、存在问题\n"
        "执法人员数量不足，信息化水平有待提高。\n")


def _garbage(n: int = 3000, seed: int = 7) -> bytes:
    """Bytes that are neither UTF-8 nor plausible GB18030 text, and hold no NUL."""
    data = random.Random(seed).randbytes(n).replace(b"\x00", b"\x9c")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    raise AssertionError("random bytes happened to be UTF-8")


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------

def test_decode_utf8():
    assert decode_bytes(TINY.encode("utf-8"), "r.txt") == (TINY, "utf-8")


def test_decode_utf8_bom_strips_bom():
    text, enc = decode_bytes(codecs.BOM_UTF8 + TINY.encode("utf-8"), "r.txt")
    assert text == TINY and enc == "utf-8-sig"
    assert not text.startswith("\ufeff")


@pytest.mark.parametrize("codec", ["gbk", "gb18030"])
def test_decode_gbk(codec):
    assert decode_bytes(TINY.encode(codec), "r.txt") == (TINY, "gb18030")


def test_decode_utf16_with_bom():
    text, enc = decode_bytes(TINY.encode("utf-16"), "r.txt")
    assert text == TINY and enc == "utf-16"


@pytest.mark.parametrize("doc_id", [S000, S001, S002, S003, S004])
def test_decode_every_sample_in_gb18030(sample_texts, doc_id):
    original = sample_texts[doc_id]
    text, enc = decode_bytes(original.encode("gb18030"), f"{doc_id}.txt")
    assert enc == "gb18030" and text == original


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n"], ids=["empty", "blank"])
def test_decode_empty(data):
    with pytest.raises(GovqaError, match=r"e\.txt: empty file"):
        decode_bytes(data, "e.txt")


@pytest.mark.parametrize("data", [codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\r\n \n", "\n".encode("utf-16")],
                         ids=["utf8-bom", "utf8-bom-blank", "utf16-blank"])
def test_load_bom_only_is_empty(tmp_path, data):
    p = tmp_path / "e.txt"
    p.write_bytes(data)
    with pytest.raises(GovqaError, match=r"e\.txt: empty file"):
        load_document(p)


def test_decode_binary():
    with pytest.raises(GovqaError, match=r"b\.txt: binary file"):
        decode_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "b.txt")


def test_decode_utf16_without_bom_is_binary():
    with pytest.raises(GovqaError, match="binary"):
        decode_bytes(TINY.encode("utf-16-le"), "b.txt")


@pytest.mark.parametrize("data", [_garbage(), _garbage(200, 3), "café résumé naïve".encode("latin-1") * 20],
                         ids=["random", "random-short", "latin1"])
def test_decode_unreadable(data):
    with pytest.raises(GovqaError, match=r"g\.txt: unreadable text encoding"):
        decode_bytes(data, "g.txt")


@pytest.mark.parametrize("data", [codecs.BOM_UTF8 + TINY.encode("gbk"),
                                  TINY.encode("utf-16")[:-1]], ids=["utf8-bom+gbk", "utf16-truncated"])
def test_decode_bad_bytes_after_bom_is_a_user_error(data):
    with pytest.raises(GovqaError, match=r"x\.txt"):
        decode_bytes(data, "x.txt")


# ---------------------------------------------------------------------------------------------
# loading files and folders
# ---------------------------------------------------------------------------------------------

def test_load_document(tmp_path):
    data = TINY.encode("gbk")
    p = tmp_path / "青山县报告.TXT"
    p.write_bytes(data)
    doc = load_document(p)
    assert doc.doc_id == "青山县报告"
    assert doc.source == str(p)
    assert doc.text == TINY
    assert doc.encoding == "gb18030"
    assert doc.sha256 == hashlib.sha256(data).hexdigest()


def test_load_document_keeps_crlf(tmp_path):
    p = tmp_path / "crlf.txt"
    p.write_bytes(TINY.replace("\n", "\r\n").encode("utf-8"))
    assert load_document(p).text == TINY.replace("\n", "\r\n")


@pytest.mark.parametrize("suffix", [".txt", ".md", ".text"])
def test_load_supported_suffixes(tmp_path, suffix):
    p = tmp_path / f"r{suffix}"
    p.write_text(TINY, encoding="utf-8")
    assert load_document(p).text == TINY


def test_load_missing(tmp_path):
    p = tmp_path / "nope.txt"
    with pytest.raises(GovqaError, match="nope.txt: no such file"):
        load_document(p)


@pytest.mark.parametrize("name", ["report.pdf", "report.docx", "report"])
def test_load_unsupported_type(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(TINY.encode("utf-8"))
    with pytest.raises(GovqaError, match=f"{name}: unsupported file type"):
        load_document(p)


@pytest.mark.parametrize("content,msg", [(b"", "empty file"), (b"\n \n", "empty file"),
                                         (b"abc\x00def", "binary file"), (_garbage(), "unreadable text encoding")])
def test_load_bad_content_names_file(tmp_path, content, msg):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(GovqaError) as e:
        load_document(p)
    assert str(p) in str(e.value) and msg in str(e.value)
    assert "\n" not in str(e.value)


def test_expand_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text(TINY, encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text(TINY, encoding="utf-8")
    (tmp_path / "sub" / "c.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / ".hidden.txt").write_text(TINY, encoding="utf-8")
    (tmp_path / "__init__.py").write_text("")
    files, warnings = expand_paths([tmp_path])
    assert files == [tmp_path / "a.txt", tmp_path / "sub" / "b.md"]
    assert len(warnings) == 1 and "c.pdf" in warnings[0] and "unsupported" in warnings[0]


def test_expand_paths_explicit_file_kept_and_missing_raises(tmp_path):
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF")
    files, warnings = expand_paths([pdf])
    assert files == [pdf] and warnings == []  # load_document refuses it, by name
    with pytest.raises(GovqaError, match="missing.txt: no such file or folder"):
        expand_paths([tmp_path / "missing.txt"])


def test_sample_paths():
    paths = sample_paths()
    assert [p.stem for p in paths] == [S000, S001, S002, S003, S004]
    assert all(p.is_file() and p.suffix == ".txt" for p in paths)
    assert all(load_document(p).encoding == "utf-8" for p in paths)


# ---------------------------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------------------------

EXPECTED_META = {
    S000: dict(agency="柯桥区交通运输局", region="柯桥区", level="区县", year=2023, report_type="法治政府建设年度报告",
               published="2024-01-30", doc_number=""),
    S001: dict(agency="哈尔滨市交通运输局", region="哈尔滨市", level="市", year=2020, report_type="法治政府建设年度报告",
               published="2021-02-23", doc_number=""),
    S002: dict(agency="睢县交通运输局", region="睢县", level="区县", year=2023, report_type="法治政府建设年度报告",
               published="", doc_number=""),
    S003: dict(agency="绍兴市交通运输局", region="绍兴市", level="市", year=2023, report_type="法治政府建设年度报告",
               published="2024-01-30", doc_number="绍市交〔2024〕4号"),
    S004: dict(agency="湘乡市交通运输局", region="湘乡市", level="市", year=2024, report_type="行政执法工作报告",
               published="2025-01-15", doc_number=""),
}


@pytest.mark.parametrize("doc_id", sorted(EXPECTED_META))
def test_metadata(sample_texts, doc_id):
    meta = extract_metadata(sample_texts[doc_id]).as_dict()
    for key, value in EXPECTED_META[doc_id].items():
        assert meta[key] == value, (key, meta)
    assert meta["title"] and "报告" in meta["title"]


def test_metadata_titles(sample_texts):
    titles = {d: extract_metadata(t).title for d, t in sample_texts.items()}
    assert titles[S001] == "哈尔滨市交通运输局2020年度法治政府部门建设工作情况报告"
    assert titles[S002] == "睢县交通运输局2023年度法治政府建设工作报告"
    # traditional title folded to simplified
    assert titles[S004] == "湘乡市交通运输局2024年行政执法工作报告"


def test_metadata_same_in_any_encoding_or_script(sample_texts):
    from rag.clean import to_traditional

    base = extract_metadata(sample_texts[S001]).as_dict()
    assert extract_metadata(to_traditional(sample_texts[S001])).as_dict() == base
    assert extract_metadata(sample_texts[S001].replace("\n", "\r\n")).as_dict() == base


def test_metadata_tiny_report():
    meta = extract_metadata(TINY)
    assert (meta.agency, meta.region, meta.year, meta.report_type) == ("青山县交通运输局", "青山县", 2023, "法治政府建设年度报告")


@pytest.mark.parametrize("name,places,org", [
    ("绍兴市柯桥区交通运输局", ["绍兴市", "柯桥区"], "交通运输局"),
    ("哈尔滨市交通运输局", ["哈尔滨市"], "交通运输局"),
    ("睢县交通运输局", ["睢县"], "交通运输局"),
])
def test_split_place(name, places, org):
    assert split_place(name) == (places, org)
