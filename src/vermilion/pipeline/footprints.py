"""Per-band heavy footprints of a deblended catalog from its stored models.

Where catalogs and the pipeline's models meet: `update_catalog_footprints` (Rubin:
``lsst.meas.extensions.scarlet.io.updateCatalogFootprints``, a free function there
too) rebuilds each blend of a `vermilion.io.ModelData` in one band, renders it in that
band's PSF and gives every child of a `vermilion.detect.SourceCatalog` its heavy
footprint, re-apportioning an image if given, with the mask planes that the
pipeline's configuration (recorded under `CONFIG_KEY`) excluded.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from vermilion.core import NoDataObservation, Observation, weight_sources
from vermilion.core.bbox import Box
from vermilion.core.masks import MASK_PLANES
from vermilion.core.measure import blendedness
from vermilion.detect.footprint import HeavyFootprint, SpanSet, make_peaks
from vermilion.io.convert import psf_kernel_image
from vermilion.io.data import BlendData, ModelData
from vermilion.io.errors import ModelDataError
from vermilion.io.rebuild import data_to_blend

from .config import CONFIG_KEY

__all__ = ["updateCatalogFootprints", "update_catalog_footprints"]


def update_catalog_footprints(
    catalog,
    model_data: ModelData,
    band: str,
    psf_model: Any = None,
    redistribute_image: Any = None,
    mask_image: Any = None,
    remove_model_data: bool = True,
    update_flux_columns: bool = True,
) -> int:
    """Give every deblended child of ``catalog`` its heavy footprint in one band.

    As ``lsst.meas.extensions.scarlet.io.updateCatalogFootprints``: the models of
    each blend are rebuilt in ``band`` and rendered in its observed PSF; the
    child's footprint becomes a `vermilion.detect.HeavyFootprint` of that band
    holding its rendered model, or, with ``redistribute_image``, its share of
    that image (re-apportioned as by `vermilion.core.weight_sources`: inside the
    parent footprint, without the pixels the stored configuration's ``badMask``
    excludes, exactly as the pipeline did).

    Parameters
    ----------
    catalog
        The deblended `vermilion.detect.SourceCatalog` (parents and children);
        updated in place. Parents whose blend is not in ``model_data`` (skipped,
        failed, or not read) are left alone.
    model_data
        The `vermilion.io.ModelData` of the same run.
    band
        The band, one of ``model_data.bands``.
    psf_model
        The band's observed PSF: a 2D image, an object with
        ``computeKernelImage((y, x))`` (e.g. ``butler.get("deepCoadd_calexp.psf",
        ...)``, evaluated at each blend's PSF centre), or None for the PSF
        stored with the models.
    redistribute_image
        The band's image to re-apportion: a `vermilion.repo.Exposure` (image,
        variance, mask and origin), a `vermilion.repo.MultibandExposure` (the band
        is taken), a 2D `vermilion.core.Image`, or a 2D array whose first pixel is
        ``(0, 0)``. It must cover every blend. None: footprints hold the models.
    mask_image
        The band's integer mask on the same pixels (default: the exposure's):
        ``badMask`` pixels get no flux, and ``NO_DATA`` pixels count against
        ``deblend_dataCoverage_<band>``.
    remove_model_data
        Drop each blend (and isolated source) from ``model_data`` once its
        children are done, so that memory stays flat over a whole patch.
    update_flux_columns
        Write the band's columns (created when missing, NaN elsewhere):

        ====================================  ==============================================
        ``deblend_scarletFlux_<band>``        flux of the child's model (as the pipeline)
        ``deblend_reapportionedFlux_<band>``  sum of the heavy footprint (only with
                                              ``redistribute_image``; as the pipeline)
        ``deblend_peak_instFlux_<band>``      heavy footprint value at the child's peak
                                              (0 when the peak is outside it)
        ``deblend_dataCoverage_<band>``       fraction of the heavy footprint's pixels
                                              with data (not ``NO_DATA``; with a mask)
        ``deblend_blendedness_<band>``        ``1 - sum(m_k^2) / sum(m_k m_all)`` of the
                                              rendered models (``m_all``: the blend's)
        ====================================  ==============================================

        The first two are the pipeline's own columns (`DeblendTask` writes them for
        every band), recomputed identically; Rubin's band-less names
        (``deblend_scarletFlux`` ...) get the ``_<band>`` suffix here because one
        vermilion catalog holds every band.

    Returns
    -------
    int
        Number of child records updated.

    Raises
    ------
    ModelDataError
        A band the models do not have, an image that does not cover a blend, a
        source of the models without a catalog record.

    Notes
    -----
    Heavy footprints cover the pixels where the rendered model (or the
    re-apportioned image) is non-zero, inside the blend box; rendered models are
    convolved by FFT and values below ``1e-6`` of a source's peak (round-off)
    are dropped. A child with no such pixel gets a one-pixel footprint of
    value 0 at its peak.
    """
    if model_data.bands is None or band not in model_data.bands:
        raise ModelDataError(
            f"band {band!r} is not in the model data's bands {model_data.bands}", field="band"
        )
    missing = [c for c in ("id", "parent", "footprint") if c not in catalog.colnames]
    if missing:
        raise ValueError(f"the catalog has no column(s) {missing}: is it a deblended catalog?")
    image = _BandImage.build(redistribute_image, mask_image, band)
    run = _FootprintRun(catalog, model_data, band, psf_model, image, update_flux_columns)
    ids = np.asarray(catalog["id"], dtype=np.int64)
    is_parent = np.asarray(catalog["parent"]) == 0
    parent_ids = [int(i) for i in ids[is_parent] if int(i) in model_data.blends]
    if image is not None:
        for pid in parent_ids:
            image.check_covers(model_data.blends[pid].bbox, pid)
    for pid in parent_ids:
        run.blend(pid, model_data.attach(model_data.blends[pid]))
        if remove_model_data:
            model_data.blends.pop(pid, None)
    if image is not None:
        for sid in [s for s in model_data.isolated if s in run.row_of]:
            run.isolated(sid, model_data.isolated[sid])
            if remove_model_data:
                model_data.isolated.pop(sid, None)
    run.out.apply(catalog, band, update_flux_columns, image is not None)
    return run.out.n_children


def updateCatalogFootprints(
    modelData: ModelData,
    catalog,
    band: str,
    imageForRedistribution: Any = None,
    removeScarletData: bool = True,
    updateFluxColumns: bool = True,
    *,
    psfModel: Any = None,
) -> int:
    """Rubin spelling of `update_catalog_footprints`, with Rubin's argument order.

    ``lsst.meas.extensions.scarlet.io.updateCatalogFootprints(modelData, catalog,
    band, imageForRedistribution=...)``; the band's PSF is ``psfModel`` (default:
    the PSF stored with the models).
    """
    return update_catalog_footprints(
        catalog,
        modelData,
        band,
        psfModel,
        redistribute_image=imageForRedistribution,
        remove_model_data=removeScarletData,
        update_flux_columns=updateFluxColumns,
    )


def _mask_bits(model_data: ModelData, image: _BandImage | None) -> tuple[int, int]:
    """The bits of the recorded configuration's ``badMask`` planes, and of ``NO_DATA``."""
    metadata = model_data.metadata if isinstance(model_data.metadata, dict) else {}
    config = metadata.get(CONFIG_KEY)
    config = config if isinstance(config, dict) else {}
    bad_names = config.get("badMask", ())
    bad_names = [bad_names] if isinstance(bad_names, str) else list(bad_names)
    planes = image.mask_planes if image is not None else dict(MASK_PLANES)
    bad_bits = 0
    for name in bad_names:
        bad_bits |= int(planes.get(name, 0))
    return bad_bits, int(planes.get("NO_DATA", 0))


class _FootprintRun:
    """The state of one `update_catalog_footprints` call: catalog rows, band, image, PSFs."""

    def __init__(self, catalog, model_data, band, psf_model, image, update_columns) -> None:
        self.catalog = catalog
        self.band = band
        self.image = image
        self.update_columns = update_columns
        self.bad_bits, self.no_data_bit = _mask_bits(model_data, image)
        ids = np.asarray(catalog["id"], dtype=np.int64)
        self.row_of = {int(i): r for r, i in enumerate(ids.tolist())}
        cols = catalog.colnames
        self.peak_y = np.asarray(catalog["peak_y"]) if "peak_y" in cols else None
        self.peak_x = np.asarray(catalog["peak_x"]) if "peak_x" in cols else None
        self.peak_id = np.asarray(catalog["peak_id"]) if "peak_id" in cols else None
        self.fp_col = catalog["footprint"]
        self.out = _ColumnUpdates()
        b = model_data.bands.index(band)
        self.psfs = _PsfCache(psf_model, b, band, model_data.psf)

    def _rows(self, blend, pid: int) -> list[int]:
        rows = []
        for source in blend.sources:
            sid = source.metadata["id"]
            if isinstance(sid, str):
                raise ModelDataError(
                    f"source id {sid!r} is a string: catalog records have integer ids",
                    blend_id=pid,
                    source_id=sid,
                )
            sid = int(sid)
            row = self.row_of.get(sid)
            if row is None:
                raise ModelDataError(
                    "the catalog has no record for this source of the models (are the "
                    "catalog and the model data from the same run?)",
                    blend_id=pid,
                    source_id=sid,
                )
            rows.append(row)
        return rows

    def blend(self, pid: int, blend_data: BlendData) -> None:
        """The children of one blend."""
        image, band, out = self.image, self.band, self.out
        parent_fp = self.fp_col[self.row_of[pid]]
        blend = _mono_blend(blend_data, pid, self.psfs, image, parent_fp, self.bad_bits)
        rows = self._rows(blend, pid)
        renders = _renders(blend)
        if image is not None:
            weight_sources(blend)
        total = None
        if self.update_columns:
            total = np.zeros(blend.bbox.shape, np.float64)
            for entry in renders:
                if entry is not None:
                    box, r = entry
                    total[box.slices_in(blend.bbox)] += r
        for source, row, entry in zip(blend.sources, rows, renders):
            if image is not None:
                if source.flux is None:
                    values, origin = np.zeros((0, 0), np.float32), blend.bbox.origin
                else:
                    values, origin = source.flux.data[0], source.flux.yx0
                keep = values != 0
            elif entry is None:
                values, origin = np.zeros((0, 0), np.float32), blend.bbox.origin
                keep = np.zeros((0, 0), bool)
            else:
                box, values = entry
                origin = box.origin
                peak = float(np.max(np.abs(values))) if values.size else 0.0
                keep = np.abs(values) > 1e-6 * peak
            peaks = _child_peaks(self.fp_col[row], row, self.peak_y, self.peak_x, self.peak_id)
            heavy = _heavy(values, keep, origin, peaks, band)
            out.footprint(row, heavy)
            if not self.update_columns:
                continue
            model_flux = (
                float(np.sum(source.get_model().data, dtype=np.float64))
                if not source.is_null
                else 0.0
            )
            out.set(f"deblend_scarletFlux_{band}", row, model_flux)
            if image is not None:
                out.set(
                    f"deblend_reapportionedFlux_{band}",
                    row,
                    float(np.sum(heavy.values, dtype=np.float64)),
                )
                if image.mask is not None:
                    out.set(
                        f"deblend_dataCoverage_{band}",
                        row,
                        image.coverage(heavy, self.no_data_bit),
                    )
            py = int(self.peak_y[row]) if self.peak_y is not None else int(peaks["y"][0])
            px = int(self.peak_x[row]) if self.peak_x is not None else int(peaks["x"][0])
            out.set(f"deblend_peak_instFlux_{band}", row, _value_at(values, keep, origin, py, px))
            out.set(f"deblend_blendedness_{band}", row, _blendedness(entry, total, blend.bbox))

    def isolated(self, sid: int, iso) -> None:
        """An isolated child (not deblended): its heavy footprint is the image in its span."""
        image, band, out = self.image, self.band, self.out
        row = self.row_of[sid]
        box = iso.bbox
        image.check_covers(box, None, source_id=sid)
        values, weights, _ = image.cut(box, np.asarray(iso.span_array) > 0, self.bad_bits)
        keep = weights > 0
        fp = self.fp_col[row]
        peaks = fp.peaks if fp is not None and fp.n_peaks else _peaks_at(iso.peak)
        heavy = _heavy(values, keep, box.origin, peaks, band)
        out.footprint(row, heavy)
        if self.update_columns:
            out.set(
                f"deblend_reapportionedFlux_{band}",
                row,
                float(np.sum(heavy.values, dtype=np.float64)),
            )
            peak = (int(peaks["y"][0]), int(peaks["x"][0]))
            out.set(
                f"deblend_peak_instFlux_{band}",
                row,
                _value_at(values, keep, box.origin, *peak),
            )
            out.set(f"deblend_blendedness_{band}", row, 0.0)
            if image.mask is not None:
                out.set(
                    f"deblend_dataCoverage_{band}", row, image.coverage(heavy, self.no_data_bit)
                )


# ---- helpers -------------------------------------------------------------------------


_FLUX_COLUMNS = {
    "deblend_scarletFlux": "flux of the child's model in band {}",
    "deblend_reapportionedFlux": "flux of the child's re-apportioned observed image in band {}",
    "deblend_peak_instFlux": "heavy footprint value at the child's peak in band {}",
    "deblend_dataCoverage": "fraction of the heavy footprint's pixels with data in band {}",
    "deblend_blendedness": "1 - sum(m_k^2) / sum(m_k m_all) of the rendered models in band {}",
}


class _BandImage:
    """One band's image (with optional variance and mask) placed at ``origin``."""

    def __init__(self, image, variance, mask, origin, mask_planes) -> None:
        self.image = image
        self.variance = variance
        self.mask = mask
        self.origin = (int(origin[0]), int(origin[1]))
        self.mask_planes = dict(mask_planes or MASK_PLANES)

    @classmethod
    def build(cls, image: Any, mask_image: Any, band: str) -> _BandImage | None:
        if image is None:
            if mask_image is not None:
                raise ValueError("mask_image is used with redistribute_image only")
            return None
        variance = mask = None
        planes = getattr(image, "mask_planes", None)
        if hasattr(image, "images") and hasattr(image, "bands"):  # a MultibandExposure
            bands = tuple(str(x) for x in image.bands)
            if band not in bands:
                raise ModelDataError(
                    f"the exposure has no band {band!r} (its bands: {list(bands)})",
                    field="redistribute_image",
                )
            image = image[band]
        if hasattr(image, "image") and hasattr(image, "bbox"):  # an Exposure
            exp_band = getattr(image, "band", None)
            if exp_band is not None and str(exp_band) != band:
                raise ModelDataError(
                    f"the exposure is of band {exp_band!r}, not {band!r}",
                    field="redistribute_image",
                )
            data, variance = image.image, getattr(image, "variance", None)
            mask = getattr(image, "mask", None)
            origin = image.bbox.origin
        elif hasattr(image, "data") and hasattr(image, "yx0"):  # a vermilion Image
            data, origin = image.data, image.yx0
            if data.ndim == 3:
                img_bands = tuple(image.bands)
                if band not in img_bands:
                    raise ModelDataError(
                        f"the image has no band {band!r} (its bands: {list(img_bands)})",
                        field="redistribute_image",
                    )
                data = data[img_bands.index(band)]
        else:
            data, origin = image, (0, 0)
        data = np.asarray(data)
        if data.ndim != 2:
            raise ModelDataError(
                f"the image to re-apportion must be 2D (one band), got shape {data.shape}",
                field="redistribute_image",
            )
        if mask_image is not None:
            mask = getattr(mask_image, "mask", mask_image)
            planes = getattr(mask_image, "mask_planes", planes)
        for name, arr in (("variance", variance), ("mask", mask)):
            if arr is not None and np.shape(arr) != data.shape:
                raise ModelDataError(
                    f"the {name} has shape {np.shape(arr)}, the image {data.shape}",
                    field="mask_image" if name == "mask" else "redistribute_image",
                )
        return cls(
            data,
            None if variance is None else np.asarray(variance),
            None if mask is None else np.asarray(mask),
            origin,
            planes,
        )

    @property
    def bbox(self) -> Box:
        return Box(self.image.shape, self.origin)

    def check_covers(self, box: Box, blend_id: int | None, source_id: int | None = None) -> None:
        if (box & self.bbox) != box:
            raise ModelDataError(
                f"the image to re-apportion covers {self.bbox}, not the box {box}",
                blend_id=blend_id,
                source_id=source_id,
                field="redistribute_image",
            )

    def cut(self, box: Box, inside: np.ndarray | None, bad_bits: int):
        """Pixels of ``box`` (0 where invalid), their weights (1 valid, 0 not) and variance.

        The variance (1 where the exposure has none, or the pixel is invalid) gives the
        observation the noise rms that `weight_sources` cuts the rendered models at, the
        same as the pipeline's fit had.
        """
        sl = box.slices_in(self.bbox)
        img = self.image[sl]
        valid = np.isfinite(img)
        if inside is not None:
            valid &= inside
        var = None
        if self.variance is not None:
            var = self.variance[sl]
            valid &= np.isfinite(var) & (var > 0)
        if self.mask is not None and bad_bits:
            valid &= (self.mask[sl] & bad_bits) == 0
        variance = np.ones(img.shape, np.float32) if var is None else np.where(valid, var, 1)
        return (
            np.where(valid, img, 0).astype(np.float32),
            valid.astype(np.float32),
            variance.astype(np.float32),
        )

    def coverage(self, heavy, no_data_bit: int) -> float:
        """Fraction of the heavy footprint's pixels without ``NO_DATA``."""
        if heavy.area == 0:
            return 0.0
        if not no_data_bit:
            return 1.0
        ys, xs = heavy.spans.indices()
        m = self.mask[ys - self.origin[0], xs - self.origin[1]]
        return 1.0 - float(np.count_nonzero(m & no_data_bit)) / heavy.area


class _PsfCache:
    """The band's observed PSF for each blend, and a render-only observation per PSF."""

    def __init__(self, psf_model: Any, b: int, band: str, model_psf) -> None:
        self.psf_model = psf_model
        self.b = b
        self.band = band
        self.model_psf = model_psf
        self._fixed: np.ndarray | None = None
        self._templates: dict[Any, Any] = {}
        if psf_model is not None and not hasattr(psf_model, "computeKernelImage"):
            fixed = np.asarray(psf_model, dtype=np.float32)
            if fixed.ndim == 3 and fixed.shape[0] == 1:
                fixed = fixed[0]
            if fixed.ndim != 2:
                raise ModelDataError(
                    f"psf_model must be the band's 2D PSF image or a PSF object, got shape "
                    f"{fixed.shape}",
                    field="psf_model",
                )
            self._fixed = fixed
        elif getattr(psf_model, "is_constant", False):
            self._fixed = np.asarray(psf_model.computeKernelImage(None), dtype=np.float32)

    def kernel(self, data: BlendData, blend_id: int) -> tuple[Any, np.ndarray]:
        """``(cache key, (ph, pw) kernel)`` of the blend's observed PSF in this band."""
        if self._fixed is not None:
            return "fixed", self._fixed
        if self.psf_model is None:
            if data.psf is None:
                raise ModelDataError(
                    "no observed PSF is stored with the models: pass psf_model",
                    blend_id=blend_id,
                    field="psf_model",
                )
            return ("stored", id(data.psf)), np.asarray(data.psf[self.b])
        centre = data.psf_center if data.psf_center is not None else data.bbox.center
        k = psf_kernel_image(self.psf_model, tuple(centre))
        return ("at", k.shape, k.tobytes()), k

    def observation(self, data: BlendData, blend_id: int, image, inside, bad_bits: int):
        key, kernel = self.kernel(data, blend_id)
        model_psf = data.model_psf if data.model_psf is not None else self.model_psf
        try:
            if image is not None:
                values, weights, variance = image.cut(data.bbox, inside, bad_bits)
                return Observation(
                    values[None],
                    variance[None],
                    weights[None],
                    psfs=kernel[None],
                    model_psf=model_psf,
                    bands=(self.band,),
                    bbox=data.bbox,
                )
            template = self._templates.get(key)
            if template is None:
                if len(self._templates) > 256:
                    self._templates.clear()
                template = NoDataObservation(kernel[None], model_psf, (self.band,), data.bbox)
                self._templates[key] = template
            obs = copy.copy(template)  # shares the difference kernel and its FFT cache
            obs.bbox = data.bbox
            return obs
        except ValueError as e:
            raise ModelDataError(
                f"cannot build the observation of band {self.band!r}: {e}", blend_id=blend_id
            ) from e


def _mono_blend(data: BlendData, blend_id: int, psfs: _PsfCache, image, parent_fp, bad_bits):
    """The blend's models in one band, on that band's observation."""
    inside = None
    if image is not None:
        if parent_fp is not None and hasattr(parent_fp, "spans"):
            inside = parent_fp.spans.as_mask(data.bbox)
        elif data.footprint is not None:
            inside = np.asarray(data.footprint, bool)
    obs = psfs.observation(data, blend_id, image, inside, bad_bits)
    try:
        return data_to_blend(data, obs)
    except ModelDataError as e:
        raise e.with_context(blend_id=blend_id) from None


def _renders(blend) -> list:
    """Each source's model in the observed seeing, on its box grown by the kernel radius."""
    obs = blend.observation
    ry, rx = obs.diff_kernel.radius
    out = []
    for source in blend.sources:
        if source.is_null:
            out.append(None)
            continue
        box = source.bbox.grow((ry, rx)) & blend.bbox
        rendered = obs.convolve(source.get_model(box).data, mode="fft")[0]
        out.append((box, rendered))
    return out


def _peaks_at(peak):
    return make_peaks([round(float(peak[0]))], [round(float(peak[1]))], id=0)


def _child_peaks(fp, row: int, peak_y, peak_x, peak_id):
    if fp is not None and fp.n_peaks:
        return fp.peaks
    if peak_y is None or peak_x is None:
        raise ModelDataError("the catalog has no peak_y/peak_x columns", field="catalog")
    pid = None if peak_id is None else [int(peak_id[row])]
    return make_peaks([int(peak_y[row])], [int(peak_x[row])], id=pid)


def _heavy(values: np.ndarray, keep: np.ndarray, origin, peaks, band: str):
    """A one-band heavy footprint of the kept pixels (one zero pixel at the peak if none)."""
    spans = SpanSet.from_mask(keep, origin) if keep.size else SpanSet()
    if spans.is_empty:
        y, x = int(peaks["y"][0]), int(peaks["x"][0])
        return HeavyFootprint(SpanSet([y], [x], [x]), peaks, np.zeros((1, 1), np.float32), (band,))
    return HeavyFootprint(spans, peaks, values[keep][None], (band,))


def _value_at(values: np.ndarray, keep: np.ndarray, origin, y: int, x: int) -> float:
    ly, lx = y - origin[0], x - origin[1]
    if 0 <= ly < keep.shape[0] and 0 <= lx < keep.shape[1] and keep[ly, lx]:
        return float(values[ly, lx])
    return 0.0


def _blendedness(entry, total: np.ndarray | None, bbox: Box) -> float:
    if entry is None or total is None:
        return float("nan")
    box, rendered = entry
    return blendedness(rendered, total[box.slices_in(bbox)])


class _ColumnUpdates:
    """Values gathered per column, written into the catalog in one go at the end."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.footprints: list = []
        self.values: dict[str, tuple[list[int], list[float]]] = {}

    @property
    def n_children(self) -> int:
        return len(self.rows)

    def footprint(self, row: int, heavy) -> None:
        self.rows.append(row)
        self.footprints.append(heavy)

    def set(self, name: str, row: int, value: float) -> None:
        rows, values = self.values.setdefault(name, ([], []))
        rows.append(row)
        values.append(value)

    def apply(self, catalog, band: str, flux_columns: bool, redistributed: bool) -> None:
        if flux_columns:
            for prefix, description in _FLUX_COLUMNS.items():
                if prefix == "deblend_reapportionedFlux" and not redistributed:
                    continue
                if prefix == "deblend_dataCoverage" and f"{prefix}_{band}" not in self.values:
                    continue
                catalog.ensure_column(
                    f"{prefix}_{band}", np.float32, np.nan, description=description.format(band)
                )
        for name, (rows, values) in self.values.items():
            catalog[name][np.asarray(rows, np.int64)] = np.asarray(values)
        if not self.rows:
            return
        column = catalog["footprint"]
        for row, heavy in zip(self.rows, self.footprints):
            column[row] = heavy
        if "footprint_area" in catalog.colnames:
            areas = np.array([h.area for h in self.footprints], np.int64)
            catalog["footprint_area"][np.asarray(self.rows, np.int64)] = areas
