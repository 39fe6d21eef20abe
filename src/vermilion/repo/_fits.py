"""A minimal reader of the uncompressed FITS files that vermilion writes (numpy only).

Opening a file with astropy parses and verifies every header card, which costs a
few milliseconds per file: more than reading a 100 x 100 cutout. This reader
parses just the cards of simple image HDUs (no scaling, no compression, no
groups) and reads a box of pixels through a memory map, touching only the pages
that hold the box. Anything it does not understand raises `Unsupported`, and the
caller falls back to astropy.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BLOCK = 2880
CARD = 80

_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


class Unsupported(Exception):
    """The file uses FITS features this reader leaves to astropy."""


class Malformed(Exception):
    """The file is not valid FITS (or is truncated)."""


class Header(dict):
    """Card values by key (the subset of ``astropy.io.fits.Header`` that readers use)."""

    def __init__(self, cards: dict[str, Any], text: str) -> None:
        super().__init__(cards)
        self.text = text

    def tostring(self) -> str:
        """The raw header (80-character cards), as ``astropy`` ``Header.tostring()``."""
        return self.text


@dataclass
class Hdu:
    """One HDU: its header, and where its data lie in the file."""

    header: Header
    data_offset: int
    shape: tuple[int, ...]
    dtype: str | None
    name: str = ""
    _file: FitsFile | None = field(default=None, repr=False)

    @property
    def data(self) -> np.ndarray | None:
        """The whole data array, a read-only view of the memory map (None without data)."""
        if self.dtype is None or not self.shape:
            return None
        assert self._file is not None
        count = int(np.prod(self.shape))
        return np.frombuffer(
            self._file.buffer, dtype=self.dtype, count=count, offset=self.data_offset
        ).reshape(self.shape)


def _parse_value(text: str) -> Any:
    text = text.strip()
    if text.startswith("'"):
        # a string: '' is an escaped quote; the value ends at the first lone quote
        out, i = [], 1
        while i < len(text):
            if text[i] == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(text[i])
            i += 1
        return "".join(out).rstrip()
    value = text.split("/", 1)[0].strip()
    if value == "T":
        return True
    if value == "F":
        return False
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value.replace("D", "E"))
    except ValueError as exc:
        raise Unsupported(f"card value {value!r}") from exc


class FitsFile:
    """The HDUs of a FITS file, with the file memory-mapped (close it when done)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._fh = open(self.path, "rb")
        try:
            size = os.fstat(self._fh.fileno()).st_size
            if size < BLOCK:
                raise Malformed("file shorter than one FITS block")
            self.buffer = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
            self.hdus: list[Hdu] = []
            offset = 0
            while offset < size:
                hdu, offset = self._read_hdu(offset, size)
                self.hdus.append(hdu)
        except BaseException:
            self.close()
            raise

    def _read_hdu(self, offset: int, size: int) -> tuple[Hdu, int]:
        first = not self.hdus
        cards: dict[str, Any] = {}
        lines: list[str] = []
        pos = offset
        while True:
            if pos + BLOCK > size:
                raise Malformed(f"header at byte {offset} runs past the end of the file")
            block = self.buffer[pos : pos + BLOCK].decode("ascii", errors="replace")
            pos += BLOCK
            done = False
            for i in range(0, BLOCK, CARD):
                card = block[i : i + CARD]
                lines.append(card)
                key = card[:8].rstrip()
                if key == "END":
                    done = True
                    break
                if key == "HIERARCH" and "=" in card:
                    name, _, rest = card[9:].partition("=")
                    cards[name.strip()] = _parse_value(rest)
                elif card[8:10] == "= ":
                    cards[key] = _parse_value(card[10:])
            if done:
                break
        if first and cards.get("SIMPLE") is not True:
            raise Malformed("no SIMPLE = T card: not a FITS file")
        if not first and cards.get("XTENSION") != "IMAGE":
            raise Unsupported(f"extension type {cards.get('XTENSION')!r}")
        if any(k in cards for k in ("BZERO", "BSCALE", "ZIMAGE", "GROUPS")):
            raise Unsupported("scaled, compressed or random-groups data")
        if cards.get("PCOUNT", 0) or cards.get("GCOUNT", 1) != 1:
            raise Unsupported("PCOUNT/GCOUNT")
        bitpix = cards.get("BITPIX")
        naxis = cards.get("NAXIS")
        if bitpix not in _DTYPES or not isinstance(naxis, int):
            raise Malformed(f"BITPIX {bitpix!r} / NAXIS {naxis!r}")
        # numpy order is the reverse of the FITS axes
        shape = tuple(int(cards[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
        nbytes = int(np.prod(shape)) * abs(bitpix) // 8 if naxis else 0
        end = pos + -(-nbytes // BLOCK) * BLOCK
        if pos + nbytes > size:
            raise Malformed(f"data of HDU {len(self.hdus)} run past the end of the file")
        hdu = Hdu(
            Header(cards, "".join(lines)),
            pos,
            shape,
            _DTYPES[bitpix] if naxis else None,
            str(cards.get("EXTNAME", "PRIMARY" if first else "")).upper(),
            self,
        )
        return hdu, end

    def __getitem__(self, name: str | int) -> Hdu:
        if isinstance(name, int):
            return self.hdus[name]
        for hdu in self.hdus:
            if hdu.name == name:
                return hdu
        raise KeyError(f"no HDU {name!r}")

    def __contains__(self, name: str) -> bool:
        return any(h.name == name for h in self.hdus)

    def close(self) -> None:
        buf = getattr(self, "buffer", None)
        if buf is not None:
            try:
                buf.close()
            except BufferError:
                pass  # an array view still uses it (e.g. held by a traceback): GC closes it
        self._fh.close()

    def __enter__(self) -> FitsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
