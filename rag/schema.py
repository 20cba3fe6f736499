"""Extraction schemas: user-editable YAML/JSON files validated with pydantic; value normalisation."""
from __future__ import annotations

import hashlib
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from . import GovqaError
from .clean import fold
from .evidence import cn_to_int

FieldType = Literal["integer", "number", "percent", "amount", "text", "list"]


class Cues(BaseModel):
    keywords: list[str] = Field(default_factory=list)
    near: int = 30
    exclude: list[str] = Field(default_factory=list)
    units: list[str] = Field(default_factory=list)
    pattern: str | None = None

    @field_validator("exclude")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for p in v:
            _check_regex(p)
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            _check_regex(v)
        return v


def _check_regex(p: str) -> None:
    try:
        re.compile(p)
    except re.error as e:
        raise ValueError(f"bad regex {p!r}: {e}") from None


class SchemaField(BaseModel):
    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    label: str
    type: FieldType = "text"
    description: str = ""
    unit: str | None = None
    source: Literal["text", "metadata"] = "text"
    cues: Cues = Field(default_factory=Cues)


class Schema(BaseModel):
    name: str
    version: int = 1
    fields: list[SchemaField]

    @field_validator("fields")
    @classmethod
    def _unique(cls, v: list[SchemaField]) -> list[SchemaField]:
        keys = [f.key for f in v]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ValueError(f"duplicate field key(s): {', '.join(sorted(dup))}")
        if not v:
            raise ValueError("a schema needs at least one field")
        return v

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def field(self, key: str) -> SchemaField:
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(key)


def default_schema() -> Schema:
    text = files("rag.data").joinpath("default_schema.yaml").read_text(encoding="utf-8")
    return Schema.model_validate(yaml.safe_load(text))


def load_schema(path: str | Path | None) -> Schema:
    if path is None:
        return default_schema()
    p = Path(path)
    if not p.exists():
        raise GovqaError(f"{p}: schema file not found")
    try:
        raw = p.read_text(encoding="utf-8")
        data = json.loads(raw) if p.suffix.lower() == ".json" else yaml.safe_load(raw)
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GovqaError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise GovqaError(f"{p}: a schema is a mapping with 'name' and 'fields'")
    try:
        return Schema.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise GovqaError(f"{p}: invalid schema at {where}: {err['msg']}") from None


# --- normalisation --------------------------------------------------------------------------------

_AMOUNT_SCALE = {"元": 1e-4, "千元": 1e-1, "万元": 1.0, "万万元": 1.0, "亿元": 1e4}


def parse_number(s: str) -> float | None:
    """'1,208' -> 1208, '3.5' -> 3.5, '十二' -> 12, '百分之百' -> 100."""
    s = fold(s).strip().replace(",", "")
    if s.startswith("百分之"):
        rest = s[3:]
        return 100.0 if rest == "百" else parse_number(rest)
    try:
        return float(s)
    except ValueError:
        n = cn_to_int(s)
        return float(n) if n is not None else None


def normalize(field: SchemaField, raw: str) -> tuple[object, str]:
    """A raw value as written ('872.42万万元', '1,208件', '百分之百') -> (typed value, note)."""
    text = fold(raw).strip()
    note = ""
    if field.type == "percent":
        m = re.search(r"(\d+(?:\.\d+)?)\s*%", text)
        v = float(m.group(1)) if m else parse_number(re.sub(r"[^\d.百分之零〇一二两三四五六七八九十]", "", text))
        return _num(v), note
    if field.type == "amount":
        m = re.search(r"(\d+(?:,\d{3})*(?:\.\d+)?)\s*(万万元|亿元|千元|万元|元)", text)
        if not m:
            return None, "no amount"
        unit = m.group(2)
        if unit == "万万元":
            note = "source writes 万万元 (a typo for 万元); read as 万元"
        v = float(m.group(1).replace(",", "")) * _AMOUNT_SCALE[unit]
        target = field.unit or "万元"
        v = v / _AMOUNT_SCALE.get(target, 1.0)
        return _num(round(v, 6)), note
    if field.type in ("integer", "number"):
        m = re.search(r"\d+(?:,\d{3})*(?:\.\d+)?|[零〇一二两三四五六七八九十百千万]+", text)
        v = parse_number(m.group(0)) if m else None
        if v is None:
            return None, "no number"
        return (int(v) if field.type == "integer" and float(v).is_integer() else v), note
    if field.type == "list":
        return [x for x in re.split(r"[、,;；，]", raw) if x.strip()], note
    return raw.strip(), note


def _num(v):
    if v is None:
        return None
    return int(v) if float(v).is_integer() else v
