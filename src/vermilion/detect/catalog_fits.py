"""Helpers of the catalog's FITS form (`vermilion.detect.catalog.SourceCatalog.write`).

Column units go in the standard ``TUNITn`` keywords (astropy writes them); column
descriptions, which astropy does not write, go in ``TDOCn`` keywords as the Rubin
``lsst.afw.table`` FITS catalogs hold them, and are read back from there.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["jsonable", "read_column_docs", "utf8", "write_column_docs"]


def utf8(text: np.ndarray) -> np.ndarray:
    """Unicode array -> UTF-8 bytes array (at least one byte wide)."""
    encoded = np.char.encode(text, "utf-8") if text.size else text.astype("S1")
    return encoded.astype(f"S{max(encoded.dtype.itemsize, 1)}")


def jsonable(obj):
    """Plain Python values (for JSON) of nested mappings, sequences and numpy values."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def write_column_docs(header, table) -> None:
    """Write each column's description of ``table`` as ``TDOCn`` in its HDU ``header``."""
    for i, name in enumerate(table.colnames, start=1):
        doc = table[name].description
        if doc:
            header[f"TDOC{i}"] = str(doc)


def read_column_docs(header, table) -> None:
    """Set the descriptions of ``table``'s columns from the ``TDOCn`` of ``header``."""
    for i, name in enumerate(table.colnames, start=1):
        doc = header.get(f"TDOC{i}")
        if doc and not table[name].description:
            table[name].description = str(doc)
