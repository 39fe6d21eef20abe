"""Lazy exports: a package's names are imported from their submodule on first use.

Keeps ``import vermilion`` and ``import vermilion.<package>`` light (no astropy, scipy,
butler or Dask until a name that needs them is touched). This is the one way vermilion
exports names lazily; a package that does writes, in its ``__init__.py``::

    from typing import TYPE_CHECKING

    from vermilion._lazy import lazy_exports

    if TYPE_CHECKING:  # what type checkers and readers see; the same names as _EXPORTS
        from .catalog import SourceCatalog
        from .ids import make_source_id

    __all__ = ["SourceCatalog", "make_source_id"]

    #: Submodule -> the names it exports, imported on first access.
    _EXPORTS = {"catalog": ("SourceCatalog",), "ids": ("make_source_id",)}

    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

``tests/test_architecture.py`` checks that the ``TYPE_CHECKING`` imports, ``__all__`` and
``_EXPORTS`` of every such package agree and that each name resolves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    exports: Mapping[str, Iterable[str]],
    namespace: dict[str, Any],
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Submodule (relative to the package, dotted for deeper ones: ``"io.data"``) -> the
        names it defines that the package exports.
    namespace
        The package's ``globals()``: a name is cached there once imported.
    submodules
        Submodules that attribute access imports too (``vermilion.display`` after a
        plain ``import vermilion``).

    Returns
    -------
    __getattr__, __dir__
        The two module-level functions (PEP 562) to assign in the package.
    """
    module_of = {name: module for module, names in exports.items() for name in names}
    subs = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is not None:
            value = getattr(importlib.import_module(f"{package}.{module}"), name)
        elif name in subs:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())) | set(module_of))

    return __getattr__, __dir__
