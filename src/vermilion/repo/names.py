"""Validation of run and collection names, before anything touches the disk.

The butler lays out a run's files under a folder named after the run (its file
template starts with ``{run}``), so a run name is a path inside the repository:
``../../escaped`` would put files outside it. Every name vermilion writes to or
reads from is checked here first, with the rule Rubin's pipelines follow for
collection names: ``/``-separated parts of letters, digits and ``_ . + - @``, each
part starting with a letter, a digit or ``_`` (so no ``.``, ``..`` or hidden
folders), no empty part, no leading or trailing ``/``, at most `MAX_NAME_LENGTH`
characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import CollectionNameError

__all__ = ["MAX_NAME_LENGTH", "check_collection_names", "check_run_name"]

MAX_NAME_LENGTH = 256
"""Longest run or collection name accepted."""

_PART = r"[A-Za-z0-9_][A-Za-z0-9_.+@-]*"
_NAME_RE = re.compile(rf"{_PART}(?:/{_PART})*")


def _check(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise CollectionNameError(f"{what} name must be a string, not {type(name).__name__}")
    if not name:
        raise CollectionNameError(f"{what} name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise CollectionNameError(
            f"{what} name {name[:40]!r}... is longer than {MAX_NAME_LENGTH} characters"
        )
    if _NAME_RE.fullmatch(name) is None:
        raise CollectionNameError(
            f"invalid {what} name {name!r}: use '/'-separated parts of letters, digits and "
            "'_.+-@', each starting with a letter, a digit or '_' (no '..', no leading '/')"
        )
    return name


def check_run_name(name: object) -> str:
    """Return ``name`` if it is a valid run name, else raise `CollectionNameError`.

    Parameters
    ----------
    name
        The run name (a folder inside the repository's datastore).

    Returns
    -------
    str
        ``name``, unchanged.
    """
    return _check(name, "run")


def check_collection_names(names: str | Iterable[str] | None) -> list[str] | None:
    """Check collection names (one, several or None); return them as a list (or None).

    Raises
    ------
    CollectionNameError
        A name breaks the rule of `check_run_name`.
    """
    if names is None:
        return None
    items = [names] if isinstance(names, str) else list(names)
    return [_check(n, "collection") for n in items]
