"""An independent, deliberately plain decoder of lsst.afw.table files, for the tests.

It walks the ARCHIVE_INDEX row by row with astropy, takes each object's rows
``row0:row0 + nrows`` from its ARCHIVE_DATA table, and decodes heavy-footprint arrays
straight from the bytes of the FITS heap. It shares no code with vermilion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits

DATA = Path(__file__).resolve().parents[1] / "data" / "afw"
HSC = DATA / "deepCoadd_meas_HSC_v2.fits"
HEAVY = DATA / "legacyHeavyFootprint.fits"
PRE_SPANSETS = DATA / "preSpanSetsFootprint.fits"
FOOTPRINTS = ("Footprint", "HeavyFootprintF", "HeavyFootprintD", "HeavyFootprintI")
MAX_PIXELS = 10**6
_HEAP_TYPES = {"E": ">f4", "D": ">f8", "I": ">i2", "J": ">i4", "K": ">i8"}


def _heap_arrays(path: Path, hdul, at: int, row: int) -> dict[str, np.ndarray]:
    """Variable-length arrays of one row, read from the raw bytes of the heap."""
    hdu = hdul[at]
    header = hdu.header
    raw = Path(path).read_bytes()
    data_start = hdul.fileinfo(at)["datLoc"]
    width, nrows = header["NAXIS1"], header["NAXIS2"]
    heap = data_start + header.get("THEAP", width * nrows)
    out = {}
    offset = data_start + row * width
    for k in range(1, header["TFIELDS"] + 1):
        form = header[f"TFORM{k}"].strip()
        repeat = form[: len(form) - len(form.lstrip("0123456789"))] or "1"
        letter = form.lstrip("0123456789")
        if letter[0] in "PQ":
            desc = np.frombuffer(raw, ">i8" if letter[0] == "Q" else ">i4", 2, offset)
            count, start = int(desc[0]), int(desc[1])
            values = np.frombuffer(raw, _HEAP_TYPES[letter[1]], count, heap + start)
            values = values.astype(values.dtype.newbyteorder("="))
            zero = header.get(f"TZERO{k}")
            if zero is not None:
                values = (values.astype(np.int64) + int(zero)).astype(np.int64)
            out[header[f"TTYPE{k}"].strip()] = values
            offset += desc.itemsize * 2
        else:
            size = {"E": 4, "D": 8, "I": 2, "J": 4, "K": 8, "A": 1, "L": 1, "B": 1}[letter[0]]
            offset += int(repeat) * size
    return out


def decode(path: Path) -> dict:
    """``{"records": table-or-None, "ar_hdu": int, "footprints": {id: {...}}}``.

    Each footprint: ``pixels`` (list of (y, x) in span order), ``peaks`` (list of dicts
    with id, x, y, value), and for heavy ones ``image``, ``mask``, ``variance`` arrays.
    Raises whatever it meets on a damaged file.
    """
    hdul = fits.open(path, memmap=False)
    if hdul[1].header.get("EXTTYPE", "").strip() == "ARCHIVE_INDEX":
        ar, records = 1, None
    else:
        ar, records = hdul[1].header.get("AR_HDU", 0) - 1, hdul[1]
    footprints: dict[int, dict] = {}
    if ar > 0:
        entries = {}
        for row in hdul[ar].data:
            key = (int(row["id"]), int(row["cat.persistable"]))
            entries[key] = (
                int(row["cat.archive"]),
                int(row["row0"]),
                int(row["nrows"]),
                row["name"].strip(),
            )

        def rows(cat, row0, n):
            return hdul[ar + cat].data[row0 : row0 + n]

        for (oid, pers), (cat, row0, n, name) in entries.items():
            if pers != 0 or name not in FOOTPRINTS:
                continue
            first = rows(cat, row0, n)
            if "y" in first.names:
                spans = first
            else:
                spans = rows(*entries[(int(first["id"][0]), 0)][:3])
            triples = [(int(s["y"]), int(s["x0"]), int(s["x1"])) for s in spans]
            if sum(max(b - a + 1, 0) for _, a, b in triples) > MAX_PIXELS:
                pixels = None  # a damaged file: too many pixels to list
            else:
                pixels = [(y, x) for y, a, b in triples for x in range(a, b + 1)]
            fp = {"name": name, "pixels": pixels, "spans": triples, "peaks": []}
            if (oid, 1) in entries:
                for p in rows(*entries[(oid, 1)][:3]):
                    names = p.array.names
                    fp["peaks"].append(
                        {
                            "id": int(p["id"]),
                            "x": int(p["i_x"]),
                            "y": int(p["i_y"]),
                            "value": float(p["peakValue"]),
                            "significance": float(p["significance"])
                            if "significance" in names
                            else float("nan"),
                        }
                    )
            if name.startswith("Heavy"):
                cat2, row2, _ = entries[(oid, 2)][:3]
                fp.update(_heap_arrays(path, hdul, ar + cat2, row2))
            footprints[oid] = fp
    return {"hdul": hdul, "records": records, "footprints": footprints}


def flag_bits(hdu) -> dict[str, np.ndarray]:
    """``{TFLAGn name: bool per record}`` decoded bit by bit from the raw bytes."""
    header = hdu.header
    if "flags" not in hdu.columns.names:
        return {}
    raw = np.asarray(hdu.data)["flags"]
    out = {}
    k = 1
    while f"TFLAG{k}" in header:
        byte, bit = divmod(k - 1, 8)
        out[header[f"TFLAG{k}"].strip()] = ((raw[:, byte] >> (7 - bit)) & 1).astype(bool)
        k += 1
    return out


def plain_columns(hdu) -> list[tuple[str, np.ndarray, object, str]]:
    """(name, values, unit, TDOC) of every column but ``flags``, as astropy gives them."""
    header = hdu.header
    out = []
    for k, col in enumerate(hdu.columns, start=1):
        if col.name == "flags":
            continue
        unit = header.get(f"TUNIT{k}")
        unit = None if unit is None else u.Unit(unit.strip(), parse_strict="silent")
        out.append((col.name, np.asarray(hdu.data[col.name]), unit, header.get(f"TDOC{k}", "")))
    return out
