"""The facts table and set/ranking questions over it: exact members, each cited; refreshed with the index."""
from __future__ import annotations

import json
import shutil

import pytest

from rag.config import load_settings
from rag.index import Store
from tests.conftest import S000, S001, S002, S003, S004, ALL  # noqa: E402

AGENCY = {S000: "柯桥区交通运输局", S001: "哈尔滨市交通运输局", S002: "睢县交通运输局", S003: "绍兴市交通运输局",
          S004: "湘乡市交通运输局"}

COURT_Q = "哪些单位的行政机关负责人出庭率达到了100%？"


def _report(place: str, body: str) -> str:
    return (f"{place}交通运输局\n2023年度法治政府建设工作报告\n"
            f"2023年，{place}交通运输局坚持依法行政，现将有关情况报告如下：\n"
            "一、主要工作\n"
            "（一）规范行政执法。全年共办理行政处罚案件45件，罚没收入12.5万元。\n"
            f"{body}"
            "二、存在问题\n执法人员数量不足，信息化水平有待提高。\n")


# another bureau whose only 100% is a different rate
CERT = _report("白水县", "（二）加强队伍建设。执法人员持证率100%，案卷合格率100%，组织执法培训3次。\n")
# a bureau whose only 100% is a goal
GOAL = _report("青山县", "（二）提高应诉水平。完善行政应诉工作机制，确保行政机关负责人出庭率达到100%。\n")
# a bureau that does state the rate as a result
REAL = _report("松林县", "（二）提高应诉水平。全年行政诉讼案件4件，行政机关负责人出庭应诉率100%。\n")


def _ask(cli, store, question):
    r = cli("ask", question, "--json", store=store)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _facts(cli, store, *where):
    args = ["facts", "--json"]
    for w in where:
        args += ["--where", w]
    r = cli(*args, store=store)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _check_members(d: dict, originals: dict[str, str], doc_ids: list[str], agencies: list[str]) -> None:
    """Exactly these reports are named, each once with a citation that is its original text."""
    assert d["refused"] is False and d["mode"] == "facts"
    assert [c["doc_id"] for c in d["citations"]] == doc_ids
    for c in d["citations"]:
        assert originals[c["doc_id"]][c["start"]:c["end"]] == c["quote"]
        assert f"[{c['n']}]" in d["answer"]
    lines = [x for x in d["answer"].splitlines() if x.strip()]
    assert len(lines) == len(agencies)
    for a in agencies:
        assert sum(a in x for x in lines) == 1, (a, d["answer"])
    named = {a for a in list(AGENCY.values()) + ["白水县交通运输局", "青山县交通运输局", "松林县交通运输局"]
             if a in d["answer"]}
    assert named == set(agencies), d["answer"]


def _originals(path) -> dict[str, str]:
    store = Store(load_settings(store=path))
    try:
        return {d.doc_id: store.original(d.doc_id) for d in store.docs()}
    finally:
        store.close()


def _ingest(store_path, files):
    store = Store(load_settings(store=store_path))
    try:
        r = store.ingest(files)
        assert not r.errors, r.errors
        return r
    finally:
        store.close()


@pytest.fixture()
def store_copy(tmp_path, sample_store_path):
    path = tmp_path / "store"
    shutil.copytree(sample_store_path, path)
    return path


# ---------------------------------------------------------------------------------------------
# over the five samples
# ---------------------------------------------------------------------------------------------

def test_court_rate_100_names_exactly_keqiao_and_harbin(cli, sample_store_path):
    d = _ask(cli, sample_store_path, COURT_Q)
    originals = _originals(sample_store_path)
    _check_members(d, originals, [S000, S001], ["柯桥区交通运输局", "哈尔滨市交通运输局"])
    quotes = {c["doc_id"]: c["quote"] for c in d["citations"]}
    assert "100%" in quotes[S000] and "出庭" in quotes[S000]
    assert "100%" in quotes[S001] and "出庭" in quotes[S001]


def test_most_penalty_cases(cli, sample_store_path):
    d = _ask(cli, sample_store_path, "哪个单位的行政处罚案件最多？")
    _check_members(d, _originals(sample_store_path), [S003], ["绍兴市交通运输局"])
    assert "13385" in d["citations"][0]["quote"]


def test_fewest_penalty_cases(cli, sample_store_path):
    d = _ask(cli, sample_store_path, "哪个单位的行政处罚案件最少？")
    _check_members(d, _originals(sample_store_path), [S001], ["哈尔滨市交通运输局"])


def test_reports_of_2023(cli, sample_store_path):
    d = _ask(cli, sample_store_path, "哪些报告是2023年度的？")
    _check_members(d, _originals(sample_store_path), [S000, S002, S003],
                   ["柯桥区交通运输局", "睢县交通运输局", "绍兴市交通运输局"])
    assert all("2023" in c["quote"] for c in d["citations"])


def test_facts_where_court_rate(cli, sample_store_path):
    rows = _facts(cli, sample_store_path, "court_appearance_rate>=100")
    assert [r["doc_id"] for r in rows] == [S000, S001]
    originals = _originals(sample_store_path)
    for r in rows:
        assert r["values"]["court_appearance_rate"] == 100
        ev = r["evidence"]["court_appearance_rate"]
        assert originals[r["doc_id"]][ev["start"]:ev["end"]] == ev["quote"]


def test_facts_where_combined_and_unknown_field(cli, sample_store_path):
    rows = _facts(cli, sample_store_path, "year=2023", "penalty_cases>1000")
    assert [r["doc_id"] for r in rows] == [S000, S003]
    assert [r["doc_id"] for r in _facts(cli, sample_store_path, "court_appearance_rate=null")] == [S002, S003, S004]
    r = cli("facts", "--where", "no_such_field>1", store=sample_store_path)
    assert r.returncode != 0 and "unknown field" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# distractor reports added, then one that does qualify
# ---------------------------------------------------------------------------------------------

def test_added_distractors_do_not_join_and_a_real_one_does(cli, store_copy, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "baishui.txt").write_text(CERT, encoding="utf-8")
    (src / "qingshan.txt").write_text(GOAL, encoding="utf-8")
    r = _ingest(store_copy, [src / "baishui.txt", src / "qingshan.txt"])
    assert sorted(r.added) == ["baishui", "qingshan"]

    originals = _originals(store_copy)
    assert len(originals) == 7
    d = _ask(cli, store_copy, COURT_Q)
    _check_members(d, originals, [S000, S001], ["柯桥区交通运输局", "哈尔滨市交通运输局"])
    assert "7份" in " ".join(d.get("notes", [])), "the new reports were looked at"
    assert [x["doc_id"] for x in _facts(cli, store_copy, "court_appearance_rate>=100")] == [S000, S001]
    rows = {x["doc_id"]: x for x in _facts(cli, store_copy)}
    assert rows["baishui"]["values"]["court_appearance_rate"] is None
    assert rows["qingshan"]["values"]["court_appearance_rate"] is None
    assert rows["baishui"]["values"]["agency"] == "白水县交通运输局"

    (src / "songlin.txt").write_text(REAL, encoding="utf-8")
    assert _ingest(store_copy, [src / "songlin.txt"]).added == ["songlin"]
    originals = _originals(store_copy)
    d = _ask(cli, store_copy, COURT_Q)
    _check_members(d, originals, [S000, S001, "songlin"],
                   ["柯桥区交通运输局", "哈尔滨市交通运输局", "松林县交通运输局"])
    assert "出庭应诉率100%" in d["citations"][2]["quote"]
    assert [x["doc_id"] for x in _facts(cli, store_copy, "court_appearance_rate>=100")] == [S000, S001, "songlin"]


# ---------------------------------------------------------------------------------------------
# facts follow the index
# ---------------------------------------------------------------------------------------------

def test_facts_refresh_on_change_and_remove(cli, store_copy, tmp_path):
    report = tmp_path / "songlin.txt"
    report.write_text(REAL, encoding="utf-8")
    assert _ingest(store_copy, [report]).added == ["songlin"]
    assert [x["doc_id"] for x in _facts(cli, store_copy, "court_appearance_rate>=100")] == [S000, S001, "songlin"]

    # the report is corrected: the rate was 95.5%
    report.write_text(REAL.replace("出庭应诉率100%", "出庭应诉率95.5%"), encoding="utf-8")
    assert _ingest(store_copy, [report]).updated == ["songlin"]
    rows = {x["doc_id"]: x for x in _facts(cli, store_copy)}
    assert rows["songlin"]["values"]["court_appearance_rate"] == 95.5
    assert "95.5%" in rows["songlin"]["evidence"]["court_appearance_rate"]["quote"]
    assert [x["doc_id"] for x in _facts(cli, store_copy, "court_appearance_rate>=100")] == [S000, S001]
    d = _ask(cli, store_copy, COURT_Q)
    _check_members(d, _originals(store_copy), [S000, S001], ["柯桥区交通运输局", "哈尔滨市交通运输局"])

    # a report removed from the index leaves the facts with it
    r = cli("remove", S001, store=store_copy)
    assert r.returncode == 0, r.stderr
    assert [x["doc_id"] for x in _facts(cli, store_copy, "court_appearance_rate>=100")] == [S000]
    assert S001 not in {x["doc_id"] for x in _facts(cli, store_copy)}
    d = _ask(cli, store_copy, COURT_Q)
    _check_members(d, _originals(store_copy), [S000], ["柯桥区交通运输局"])
    d = _ask(cli, store_copy, "哪个单位的行政处罚案件最少？")
    assert [c["doc_id"] for c in d["citations"]] == ["songlin"]  # 45 件, now that 哈尔滨's 152 is gone
