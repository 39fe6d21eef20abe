"""Schema versions and the registry of migrations between them.

Each kind of stored object (the model, a blend, ...) has a current version and a
chain of migrations, each a function ``dict -> dict`` that rewrites the decoded
form of one version into the next. Reading migrates to the current version first
and then parses one form only. A version newer than the current one (written by a
newer package) raises `ModelDataError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import ModelDataError

__all__ = ["PRE_SCHEMA", "MigrationRegistry", "parse_version"]

#: The version of data written before versions existed (Rubin legacy formats).
PRE_SCHEMA = "0.0.0"


def parse_version(version: object, field: str = "version") -> tuple[int, int, int]:
    """``"1.0.1"`` -> ``(1, 0, 1)``; anything else raises `ModelDataError`."""
    if not isinstance(version, str):
        raise ModelDataError(f"schema version must be a string, got {version!r}", field=field)
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) < 10 for p in parts):
        raise ModelDataError(f"malformed schema version {version[:40]!r}", field=field)
    return (int(parts[0]), int(parts[1]), int(parts[2]))


class MigrationRegistry:
    """Migrations of one kind of object, keyed by the version they migrate from.

    Parameters
    ----------
    kind
        Name of the object kind, for messages (``"model"``, ``"blend"``, ...).
    current
        The version this package reads and writes.
    """

    def __init__(self, kind: str, current: str) -> None:
        self.kind = kind
        self.current = current
        self._current = parse_version(current)
        self._steps: dict[str, tuple[str, Callable[[dict], dict]]] = {}

    def register(self, from_version: str, to_version: str) -> Callable:
        """Decorator: register ``fn(data) -> data`` migrating ``from_version`` to ``to_version``."""
        if parse_version(to_version) <= parse_version(from_version):
            raise ValueError(f"migration must go forward: {from_version} -> {to_version}")

        def deco(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
            self._steps[from_version] = (to_version, fn)
            return fn

        return deco

    @property
    def known_versions(self) -> list[str]:
        return sorted({*self._steps, self.current}, key=parse_version)

    def check(self, version: object, field: str = "version") -> str:
        """Raise unless ``version`` is one this registry can read; return it."""
        v = parse_version(version, field)
        if v > self._current:
            raise ModelDataError(
                f"{self.kind} schema version {version} is newer than the newest this "
                f"vermilion reads ({self.current}); upgrade vermilion",
                field=field,
            )
        if version != self.current and version not in self._steps:
            raise ModelDataError(
                f"unknown {self.kind} schema version {version} "
                f"(known: {', '.join(self.known_versions)})",
                field=field,
            )
        return version  # type: ignore[return-value]

    def migrate(self, data: dict, version: object, field: str = "version") -> dict:
        """Migrate ``data`` of ``version`` to the current version (in place where possible)."""
        version = self.check(version, field)
        while version != self.current:
            to_version, fn = self._steps[version]
            data = fn(data)
            version = to_version
        return data
