"""The basics of reading ``lsst.afw`` FITS files: their error, opening, and table columns.

Shared by `vermilion.io.afw_table` (catalogs and footprint archives). Column values come
back in native byte order with their unit (``TUNITn``) and description (``TDOCn``); the
packed ``flags`` bit column becomes one boolean column per ``TFLAGn`` name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.io import fits

from .limits import check_fits_sizes

__all__ = ["AfwColumn", "AfwTableError", "open_fits", "read_columns"]

_TFORM = re.compile(r"^\s*(\d*)\s*([LXBIJKAEDCMPQ])")
# astropy errors that a damaged file can raise while it is parsed
_PARSE_ERRORS = (
    OSError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    UnicodeError,
    EOFError,
)


class AfwTableError(ValueError):
    """A FITS file that is not, or not a readable, ``lsst.afw.table`` file.

    Parameters
    ----------
    reason
        What is wrong, in words.
    path
        The file concerned, if known (the message starts with it).
    """

    def __init__(self, reason: str, path: str | os.PathLike | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(reason if path is None else f"{path}: {reason}")

    def __reduce__(self):
        return (AfwTableError, (self.reason, self.path))


@dataclass
class AfwColumn:
    """One column of an afw table: values (native byte order), unit and description."""

    name: str
    data: np.ndarray
    unit: u.UnitBase | None = None
    description: str = ""


@contextmanager
def open_fits(path: str | os.PathLike) -> Iterator[fits.HDUList]:
    """`astropy.io.fits.open` (no memory map) whose failures become `AfwTableError`."""
    try:
        hdul = fits.open(path, memmap=False)
    except FileNotFoundError:
        raise
    except _PARSE_ERRORS as err:
        raise AfwTableError(
            f"not a readable FITS file ({type(err).__name__}: {err})", path
        ) from err
    try:
        # astropy reads the headers after the first lazily: a damaged one must fail here
        # with our error, not later from wherever the HDUs are first listed
        len(hdul)
    except _PARSE_ERRORS as err:
        hdul.close()
        raise AfwTableError(f"damaged FITS file ({type(err).__name__}: {err})", path) from err
    try:
        # headers that declare more data than the file holds are refused before any read
        check_fits_sizes(hdul, path, AfwTableError)
    except BaseException:
        hdul.close()
        raise
    try:
        yield hdul
    finally:
        hdul.close()


@contextmanager
def _parsing(path) -> Iterator[None]:
    """Turn what astropy raises on a damaged file into `AfwTableError`."""
    try:
        yield
    except AfwTableError:
        raise
    except _PARSE_ERRORS as err:
        raise AfwTableError(f"damaged afw table ({type(err).__name__}: {err})", path) from err


def _header_value(header, key: str, default=None):
    value = header.get(key, default)
    return value.strip() if isinstance(value, str) else value


# -- columns -------------------------------------------------------------------------------
_UNITS: dict[str, u.UnitBase | None] = {}


def _unit(text) -> u.UnitBase | None:
    """Parsed TUNIT (cached; an unknown unit becomes an `UnrecognizedUnit`)."""
    if not text:
        return None
    text = str(text).strip()
    if text not in _UNITS:
        _UNITS[text] = u.Unit(text, parse_strict="silent")
    return _UNITS[text]


def _native(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "biufc" and not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return np.array(a, copy=True) if a.dtype.kind != "O" else a


def _unsigned(values: np.ndarray, col) -> np.ndarray:
    """Variable-length ``I``/``J`` arrays with ``TZERO`` 2**15 / 2**31 as uint16 / uint32.

    astropy applies the offset to these but keeps the signed type, so large values wrap:
    viewing the bits as unsigned gives the stored value back.
    """
    code = str(col.format).lstrip("0123456789")[1:2]
    if code == "I" and col.bzero == 32768:
        return values.astype(np.int16).view(np.uint16)
    if code == "J" and col.bzero == 2147483648:
        return values.astype(np.int32).view(np.uint32)
    return values


def _vla(hdu, index: int, col) -> np.ndarray:
    """A variable-length array column as an object array of native arrays."""
    values = hdu.data.field(index)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = _native(_unsigned(np.asarray(v), col))
    return out


def read_columns(hdu: fits.BinTableHDU, path=None) -> list[AfwColumn]:
    """Every column of an afw table HDU, the ``flags`` bits as boolean columns.

    Numeric columns come in native byte order (unsigned types through ``TZERO``),
    text columns as ``str``, variable-length arrays as object columns.
    """
    with _parsing(path):
        header = hdu.header
        coldefs = hdu.columns
        data = hdu.data
        n = 0 if data is None else len(data)
        raw = np.asarray(data) if data is not None else None
        flag_col = int(header.get("FLAGCOL", 0)) - 1
        out: list[AfwColumn] = []
        for i, col in enumerate(coldefs):
            tform = str(col.format)
            m = _TFORM.match(tform)
            if m is None:
                raise AfwTableError(f"column {col.name!r} has an unknown format {tform!r}", path)
            code = m.group(2)
            unit = _unit(header.get(f"TUNIT{i + 1}"))
            doc = str(header.get(f"TDOC{i + 1}", "") or "")
            if code == "X" and (i == flag_col or col.name == "flags"):
                out.extend(_flag_columns(header, raw, col.name, int(m.group(1) or 1), n, path))
                continue
            if code in "PQ":
                values = _vla(hdu, i, col)
            elif code == "A":
                values = np.char.decode(np.char.rstrip(raw[col.name]), "ascii", "replace")
                values = values.astype(str)
            elif (
                code in "LX" or col.bzero not in (None, 0) or col.bscale not in (None, 1) or col.dim
            ):
                values = _native(np.asarray(data.field(i)))
            else:
                values = _native(raw[col.name])
            out.append(AfwColumn(col.name, values, unit, doc))
    return out


def _flag_columns(header, raw, name: str, nbits: int, n: int, path) -> list[AfwColumn]:
    """The packed bit column as one boolean column per ``TFLAGn`` (bit n-1, MSB first)."""
    names = []
    for k in range(1, nbits + 1):
        label = header.get(f"TFLAG{k}")
        if label is None:
            break
        names.append(str(label).strip())
    if header.get(f"TFLAG{nbits + 1}") is not None:
        raise AfwTableError(f"more TFLAGn names than the {nbits} bits of {name!r}", path)
    packed = raw[name] if raw is not None else np.zeros((0, (nbits + 7) // 8), np.uint8)
    packed = np.asarray(packed, dtype=np.uint8).reshape(n, -1)
    if packed.shape[1] * 8 < nbits:
        raise AfwTableError(f"bit column {name!r} is shorter than its {nbits} bits", path)
    bits = np.unpackbits(packed, axis=1, count=len(names), bitorder="big").astype(bool)
    return [
        AfwColumn(
            label, np.ascontiguousarray(bits[:, k]), None, str(header.get(f"TFDOC{k + 1}", ""))
        )
        for k, label in enumerate(names)
    ]


# -- the archive ---------------------------------------------------------------------------
def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + c)`` for every pair (vectorised)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    return np.repeat(np.asarray(starts, np.int64) - (ends - counts), counts) + np.arange(total)
