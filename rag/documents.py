"""Reading report files: bytes -> decoded original text. All offsets everywhere refer to this text."""
from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import GovqaError

SUPPORTED_SUFFIXES = {".txt", ".md", ".text"}


@dataclass(frozen=True)
class Document:
    doc_id: str
    source: str
    text: str  # the original decoded text, never modified
    encoding: str
    sha256: str


def decode_bytes(data: bytes, name: str) -> tuple[str, str]:
    """Decode a report's bytes; strict decoders first so a wrong guess never yields mojibake."""
    if not data.strip():
        raise GovqaError(f"{name}: empty file")
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                raise GovqaError(f"{name}: starts with a {enc.upper()} byte-order mark but is not valid {enc.upper()}") from None
    if b"\x00" in data:
        raise GovqaError(f"{name}: binary file, not a text report")
    for enc in ("utf-8", "gb18030"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc == "gb18030" and not _looks_chinese(text):
            break
        return text, enc
    raise GovqaError(f"{name}: unreadable text encoding (not UTF-8 or GB18030/GBK)")


def _looks_chinese(text: str) -> bool:
    # GB18030 decodes almost any byte soup; demand that what it yields is mostly CJK or ASCII text.
    sample = text[:4000]
    good = sum(1 for c in sample if "\u4e00" <= c <= "\u9fff" or c.isascii() or c in "，。、；：“”（）《》％！？")
    return good / max(len(sample), 1) > 0.9


def load_document(path: Path) -> Document:
    path = Path(path)
    if not path.exists():
        raise GovqaError(f"{path}: no such file or folder")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise GovqaError(f"{path}: unsupported file type '{path.suffix or '(none)'}' (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GovqaError(f"{path}: cannot read ({e.strerror})") from None
    text, enc = decode_bytes(data, str(path))
    if not text.strip():
        raise GovqaError(f"{path}: empty file")
    return Document(doc_id=path.stem, source=str(path), text=text, encoding=enc, sha256=hashlib.sha256(data).hexdigest())


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to ingest, and warnings for files skipped inside folders.

    A path named explicitly must be usable; inside a folder, unsupported files are skipped with a warning.
    """
    files: list[Path] = []
    warnings: list[str] = []
    for p in map(Path, paths):
        if not p.exists():
            raise GovqaError(f"{p}: no such file or folder")
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                if f.name.startswith(".") or f.name == "__init__.py":
                    continue
                if f.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(f)
                else:
                    warnings.append(f"{f}: skipped, unsupported file type '{f.suffix or '(none)'}'")
        else:
            files.append(p)
    return files, warnings


def sample_paths() -> list[Path]:
    """The bundled sample reports shipped inside the package."""
    from importlib.resources import files

    root = files("rag.samples")
    return sorted(Path(str(root.joinpath(n.name))) for n in root.iterdir() if n.name.endswith(".txt"))
