"""``lsst.afw.table`` catalogs as `SourceCatalog` objects (read by `SourceCatalog.read`).

`vermilion.io.afw_table` turns the FITS file into arrays; this module makes them our
objects:

* every afw column is kept (values, unit, description); the packed ``flags`` column
  becomes one boolean column per ``TFLAGn`` name; afw's ``footprint`` column (archive
  ids) becomes the object column ``footprint`` holding a `Footprint` or, for a
  ``HeavyFootprint{F,D,I,U}``, a `HeavyFootprint` with one band (``bands`` None) whose
  ``values``, ``mask`` and ``variance`` are afw's ``image``, ``mask`` and ``variance``;
* peaks: ``id``, ``y`` = ``i_y``, ``x`` = ``i_x``, ``value`` = ``peakValue``, ``snr`` =
  ``significance`` where the peak table has it (else NaN). Sub-pixel positions and
  peak flags stay available from `vermilion.io.afw_table.read_afw_archive`;
* the standard columns the file lacks (`STANDARD_COLUMNS`: ``deblend_nPeaks``,
  ``peak_*``, ``footprint_area`` ...) are added at the end, derived from the
  footprints like `SourceCatalog.from_footprints` does, flags False;
* ``meta``: ``tract`` 0, ``patch`` 0, ``bands`` [], ``schema_version`` and ``afw``
  (``afw_type``, ``afw_table_version``, ``aliases``).

A bare archive (a persisted ``Footprint`` or ``HeavyFootprint``) becomes one record per
footprint, ``id`` its archive id.
"""

from __future__ import annotations

import os

import numpy as np
from astropy.io import fits
from astropy.table import Column, Table

from vermilion.io.afw_fits import AfwTableError
from vermilion.io.afw_table import AfwFootprints, describe_hdus, identify_afw, read_afw

from .footprint import PEAK_DTYPE, Footprint, HeavyFootprint, SpanSet

__all__ = ["footprints_from_afw", "read_afw_catalog"]


def footprints_from_afw(fps: AfwFootprints) -> list[Footprint]:
    """One `Footprint` (or `HeavyFootprint`) per footprint of the archive, in `fps.ids` order."""
    peaks = np.zeros(len(fps.peaks.get("id", ())), PEAK_DTYPE)
    for ours, theirs in (("id", "id"), ("y", "y"), ("x", "x"), ("value", "value")):
        if theirs in fps.peaks:
            peaks[ours] = fps.peaks[theirs]
    peaks["snr"] = fps.peaks["significance"] if "significance" in fps.peaks else np.nan
    y, x0, x1 = fps.y, fps.x0, fps.x1
    so, po, pix = fps.span_offsets, fps.peak_offsets, fps.pixel_offsets
    heavy = fps.is_heavy
    out: list[Footprint] = []
    for i in range(len(fps)):
        s = slice(so[i], so[i + 1])
        spans = SpanSet(y[s], x0[s], x1[s], normalize=bool(fps.needs_merge[i]))
        pk = peaks[po[i] : po[i + 1]]
        if heavy[i]:
            p = slice(pix[i], pix[i + 1])
            out.append(
                HeavyFootprint(
                    spans, pk, fps.image[p][None], mask=fps.mask[p][None], variance=fps.variance[p]
                )
            )
        else:
            out.append(Footprint(spans, pk))
    return out


def read_afw_catalog(hdul: fits.HDUList, path: str | os.PathLike | None, cls: type[Table]) -> Table:
    """An afw file (open) as a catalog of class ``cls`` (a `SourceCatalog`).

    ``cls`` is passed in by `SourceCatalog.read` (this module does not import the
    catalog module, which imports this one).

    Raises
    ------
    AfwTableError
        The file is neither a vermilion catalog nor an afw one (the message names the
        HDUs found), or it is a damaged afw file.
    """
    if identify_afw(hdul) is None:
        raise AfwTableError(
            "not a vermilion catalog (no CATALOG extension) nor an lsst.afw.table catalog "
            f"(no AFW_TYPE, AFW_TABLE_VERSION or ARCHIVE_INDEX); found {describe_hdus(hdul)}",
            path,
        )
    table = read_afw(hdul, path)
    footprints = footprints_from_afw(table.footprints)
    template_cols: dict[str, np.ndarray]
    if table.kind == "archive":
        per_record = footprints
        columns = [Column(table.footprints.ids.copy(), name="id")]
    else:
        n = len(table.columns[0].data) if table.columns else 0
        per_record = [None] * n
        if table.footprint_ids is not None:
            rows = table.footprints.rows_of(table.footprint_ids)
            per_record = [footprints[r] if r >= 0 else None for r in rows.tolist()]
        columns = [
            Column(c.data, name=c.name, unit=c.unit, description=c.description, copy=False)
            for c in table.columns
        ]
    fp_col = np.empty(len(per_record), dtype=object)
    fp_col[:] = per_record
    template = cls.from_footprints(per_record)
    template_cols = {name: template[name] for name in template.colnames}
    position = table.footprint_position if table.footprint_position >= 0 else len(columns)
    columns.insert(
        position,
        Column(fp_col, name="footprint", description=template_cols["footprint"].description),
    )
    have = {c.name for c in columns}
    parent = next((c.data for c in columns if c.name == "parent"), None)
    for name, col in template_cols.items():
        if name in have:
            continue
        if name == "deblend_isolatedParent" and parent is not None:
            col = col.copy(data=np.asarray(col) & (np.asarray(parent) == 0))
        columns.append(col)
    cat = cls(columns, copy=False)
    cat.meta.update(template.meta)
    cat.meta["afw"] = table.meta
    return cat
