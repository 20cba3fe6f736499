"""The openai client against any OpenAI-compatible endpoint: config, budgets, retries, streaming."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from . import GovqaError
from .config import TOKEN_ENCODING, Settings


@dataclass
class Completion:
    text: str
    usage: dict = field(default_factory=dict)
    model: str = ""


@lru_cache(maxsize=1)
def _enc():
    import tiktoken

    return tiktoken.get_encoding(TOKEN_ENCODING)


def count_tokens(text: str) -> int:
    return len(_enc().encode(text, disallowed_special=()))


def truncate_tokens(text: str, budget: int) -> str:
    toks = _enc().encode(text, disallowed_special=())
    return text if len(toks) <= budget else _enc().decode(toks[:budget])


class LLM:
    def __init__(self, settings: Settings, model: str | None = None):
        if not settings.llm_enabled:
            raise GovqaError("no LLM endpoint configured (set OPENAI_API_KEY and/or OPENAI_BASE_URL)")
        import openai

        self.settings = settings
        self.model = model or settings.model
        # openai retries timeouts, 429 and 5xx itself, with exponential backoff.
        self.client = openai.OpenAI(api_key=settings.api_key or "no-key", base_url=settings.base_url,
                                    timeout=settings.timeout, max_retries=settings.max_retries)

    def chat(self, messages: list[dict], json_mode: bool = False, max_tokens: int | None = None,
             on_delta: Callable[[str], None] | None = None) -> Completion:
        import openai

        kw = dict(model=self.model, messages=messages, temperature=0, seed=0,
                  max_tokens=max_tokens or self.settings.max_answer_tokens)
        if json_mode:
            kw["response_format"] = {"type": "json_object"}
        try:
            if on_delta is None:
                r = self.client.chat.completions.create(**kw)
                usage = r.usage.model_dump() if r.usage else {}
                return Completion(r.choices[0].message.content or "", _usage(usage), r.model or self.model)
            parts: list[str] = []
            usage: dict = {}
            stream = self.client.chat.completions.create(stream=True, **kw)
            for ev in stream:
                if ev.choices and ev.choices[0].delta and ev.choices[0].delta.content:
                    parts.append(ev.choices[0].delta.content)
                    on_delta(ev.choices[0].delta.content)
                if getattr(ev, "usage", None):
                    usage = ev.usage.model_dump()
            text = "".join(parts)
            if not usage:
                prompt = sum(count_tokens(m["content"]) for m in messages)
                usage = {"prompt_tokens": prompt, "completion_tokens": count_tokens(text)}
            return Completion(text, _usage(usage), self.model)
        except openai.APITimeoutError:  # a subclass of APIConnectionError: it must come first
            raise GovqaError("the LLM endpoint timed out (GOVQA_TIMEOUT)") from None
        except openai.APIConnectionError as e:
            raise GovqaError(f"cannot reach the LLM endpoint {self.settings.base_url or 'api.openai.com'}: {e}") from None
        except openai.AuthenticationError:
            raise GovqaError("the LLM endpoint refused the API key (check OPENAI_API_KEY)") from None
        except openai.NotFoundError:
            raise GovqaError(f"the LLM endpoint has no model '{self.model}' (set GOVQA_MODEL or --model)") from None
        except openai.APIStatusError as e:
            raise GovqaError(f"the LLM endpoint failed: HTTP {e.status_code}") from None


def _usage(u: dict) -> dict:
    p, c = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
