"""Prompt files live in prompts/; code only fills their {placeholders}."""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=None)
def load(name: str) -> str:
    return files("prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")


def render(name: str, **values) -> str:
    text = load(name)
    for k, v in values.items():
        text = text.replace("{" + k + "}", str(v))
    return text
