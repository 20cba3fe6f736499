"""The facts table: extracted values and report metadata, and set/ranking questions over it."""
from __future__ import annotations


def answer_aggregate(store, question: str):
    """An Answer for questions about sets, rankings and counts across reports; None for other questions."""
    return None
