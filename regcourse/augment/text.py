"""Text augmentation on word lists: synonym replacement, random insertion, random swap (EDA).

Used in:
    chapter "Data augmentation".
"""

from __future__ import annotations

import torch

from .._checks import check_generator, check_scalar

__all__ = [
    "SYNONYMS",
    "synonym_replacement",
    "random_insertion",
    "random_swap",
]


#: A tiny synonym table for the text examples (lower-case words).
SYNONYMS: dict[str, list[str]] = {
    "quick": ["fast", "rapid", "speedy"],
    "brown": ["tan", "chestnut"],
    "jumps": ["leaps", "hops", "springs"],
    "lazy": ["idle", "sluggish"],
    "dog": ["hound", "pup"],
    "big": ["large", "huge"],
    "small": ["little", "tiny"],
    "happy": ["glad", "cheerful"],
    "movie": ["film", "picture"],
    "good": ["fine", "great"],
    "bad": ["poor", "awful"],
    "very": ["really", "truly"],
}


def _words(text, name: str = "text") -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text.split()


def synonym_replacement(
    text: str,
    n: int = 1,
    generator: torch.Generator | None = None,
    synonyms: dict[str, list[str]] | None = None,
) -> str:
    """Replace up to ``n`` distinct words that have synonyms by a random synonym.

    Words are split on whitespace and compared in lower case; words without an entry
    in ``synonyms`` (default ``SYNONYMS``) are never touched.

    Example:
        >>> synonym_replacement("the quick dog", n=2, generator=torch.Generator().manual_seed(0))
        'the fast pup'
    """
    n = check_scalar(n, "n", kind="int", low=0)
    check_generator(generator)
    table = SYNONYMS if synonyms is None else synonyms
    words = _words(text)
    candidates = [i for i, word in enumerate(words) if table.get(word.lower())]
    order = torch.randperm(len(candidates), generator=generator).tolist()
    for k in order[:n]:
        i = candidates[k]
        options = table[words[i].lower()]
        words[i] = options[int(torch.randint(0, len(options), (1,), generator=generator))]
    return " ".join(words)


def random_insertion(
    text: str,
    n: int = 1,
    generator: torch.Generator | None = None,
    synonyms: dict[str, list[str]] | None = None,
) -> str:
    """Insert ``n`` times a synonym of a random word (one that has synonyms) at a random position."""
    n = check_scalar(n, "n", kind="int", low=0)
    check_generator(generator)
    table = SYNONYMS if synonyms is None else synonyms
    words = _words(text)
    for _ in range(n):
        candidates = [word.lower() for word in words if table.get(word.lower())]
        if not candidates:
            break
        word = candidates[int(torch.randint(0, len(candidates), (1,), generator=generator))]
        options = table[word]
        new = options[int(torch.randint(0, len(options), (1,), generator=generator))]
        words.insert(int(torch.randint(0, len(words) + 1, (1,), generator=generator)), new)
    return " ".join(words)


def random_swap(text: str, n: int = 1, generator: torch.Generator | None = None) -> str:
    """Swap two random words (two different positions), ``n`` times."""
    n = check_scalar(n, "n", kind="int", low=0)
    check_generator(generator)
    words = _words(text)
    if len(words) < 2:
        return " ".join(words)
    for _ in range(n):
        i, j = torch.randperm(len(words), generator=generator)[:2].tolist()
        words[i], words[j] = words[j], words[i]
    return " ".join(words)
