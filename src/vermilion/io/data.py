"""The stored form of a patch's models: `ModelData`, `BlendData`, `SourceData`, components.

Coordinates are ``(y, x)`` in the parent image's pixels. Rubin's x-first views
(``xy0``, ``extent``) are read-only properties. Arrays are float32.

A `BlendData` read from a file inherits the patch-level ``bands``, observed ``psf``
and ``model_psf`` of its `ModelData` unless it stores its own; writers store a
blend's own value only where it differs from the patch's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vermilion.core.masks import MASK_PLANES
from vermilion.core.measure import blendedness

from ._fields import NOWHERE, Where, as_bands, as_int_tuple, as_peak, user_array
from .errors import ModelDataError

if TYPE_CHECKING:
    from vermilion.core.bbox import Box

    from .readers import ModelDataReader

__all__ = [
    "CURRENT_SCHEMA",
    "BlendData",
    "CubeComponentData",
    "FactorizedComponentData",
    "IsolatedSourceData",
    "ModelData",
    "SourceData",
    "normalize_model_psf",
]

#: Schema version of the data model (the Rubin versioned-JSON schema we write).
CURRENT_SCHEMA = "1.0.1"


def _arrays_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a is b or (a.shape == b.shape and np.array_equal(a, b))


def argmax_peak(model: np.ndarray, origin) -> tuple[int, int]:
    """Absolute ``(y, x)`` of the maximum of a 2D model (or of the band sum of a cube)."""
    img = model if model.ndim == 2 else model.sum(axis=0)
    if img.size == 0:
        return (int(origin[0]), int(origin[1]))
    y, x = np.unravel_index(int(np.argmax(img)), img.shape)
    return (int(origin[0]) + int(y), int(origin[1]) + int(x))


def normalize_model_psf(psf: Any, where: Where = NOWHERE, field: str = "model_psf") -> np.ndarray:
    """The model PSF as a 2D float32 array (a ``(1, h, w)`` cube is squeezed)."""
    a = np.asarray(psf, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    return user_array(a, 2, where, field)


def _box_fields(origin: Any, peak: Any, where: Where, field: str) -> tuple[tuple, tuple]:
    """``origin`` as two ints and ``peak`` as two finite numbers (ints where integral)."""
    prefix = f"{field}." if field else ""
    return (
        as_int_tuple(list(origin), 2, where, f"{prefix}origin"),
        as_peak(list(peak), where, f"{prefix}peak"),
    )


@dataclass(eq=False)
class FactorizedComponentData:
    """``spectrum[:, None, None] * morph[None]`` on the box at ``origin``.

    Attributes
    ----------
    origin
        ``(y0, x0)`` of the morphology, absolute.
    peak
        ``(y, x)`` of the peak, absolute.
    spectrum
        ``(bands,)`` float32.
    morph
        ``(h, w)`` float32.
    """

    origin: tuple[int, int]
    peak: tuple[float, float]
    spectrum: np.ndarray
    morph: np.ndarray

    component_type = "factorized"

    @property
    def shape(self) -> tuple[int, int]:
        return self.morph.shape

    @property
    def n_bands(self) -> int:
        return self.spectrum.shape[0]

    @property
    def bbox(self) -> Box:
        from vermilion.core.bbox import Box

        return Box(self.shape, self.origin)

    def get_model(self) -> np.ndarray:
        """The ``(bands, h, w)`` model."""
        return self.spectrum[:, None, None] * self.morph[None]

    def validate(self, where: Where, field: str, n_bands: int | None) -> None:
        self.origin, self.peak = _box_fields(self.origin, self.peak, where, field)
        self.spectrum = user_array(self.spectrum, 1, where, f"{field}.spectrum", n_bands)
        self.morph = user_array(self.morph, 2, where, f"{field}.morph")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FactorizedComponentData)
            and tuple(self.origin) == tuple(other.origin)
            and tuple(self.peak) == tuple(other.peak)
            and _arrays_equal(self.spectrum, other.spectrum)
            and _arrays_equal(self.morph, other.morph)
        )

    def __repr__(self) -> str:
        return (
            f"FactorizedComponentData(origin={self.origin}, shape={self.shape}, "
            f"peak={self.peak}, n_bands={self.n_bands})"
        )


@dataclass(eq=False)
class CubeComponentData:
    """A full ``(bands, h, w)`` model on the box at ``origin``."""

    origin: tuple[int, int]
    peak: tuple[float, float]
    model: np.ndarray

    component_type = "cube"

    @property
    def shape(self) -> tuple[int, int]:
        return self.model.shape[-2:]

    @property
    def n_bands(self) -> int:
        return self.model.shape[0]

    @property
    def bbox(self) -> Box:
        from vermilion.core.bbox import Box

        return Box(self.shape, self.origin)

    def get_model(self) -> np.ndarray:
        return self.model

    def validate(self, where: Where, field: str, n_bands: int | None) -> None:
        self.origin, self.peak = _box_fields(self.origin, self.peak, where, field)
        self.model = user_array(self.model, 3, where, f"{field}.model", n_bands)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CubeComponentData)
            and tuple(self.origin) == tuple(other.origin)
            and tuple(self.peak) == tuple(other.peak)
            and _arrays_equal(self.model, other.model)
        )

    def __repr__(self) -> str:
        return (
            f"CubeComponentData(origin={self.origin}, shape={self.model.shape}, peak={self.peak})"
        )


ComponentData = FactorizedComponentData | CubeComponentData


@dataclass(eq=False)
class SourceData:
    """One source: its components, the id of its detection peak and free metadata."""

    components: list[ComponentData] = field(default_factory=list)
    peak_id: int | None = None
    metadata: dict[str, Any] | None = None

    def validate(self, where: Where, n_bands: int | None) -> None:
        if not isinstance(self.components, list):
            self.components = list(self.components)
        for i, c in enumerate(self.components):
            if not isinstance(c, (FactorizedComponentData, CubeComponentData)):
                raise where.error(f"unknown component type {type(c).__name__}", f"components[{i}]")
            c.validate(where, f"components[{i}]", n_bands)
        if self.peak_id is not None:
            self.peak_id = int(self.peak_id)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SourceData)
            and self.peak_id == other.peak_id
            and (self.metadata or {}) == (other.metadata or {})
            and self.components == other.components
        )


@dataclass(eq=False)
class IsolatedSourceData:
    """A source that was not deblended: its model is the image cut by ``span_array``."""

    origin: tuple[int, int]
    peak: tuple[float, float]
    span_array: np.ndarray
    metadata: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.span_array.shape

    @property
    def bbox(self) -> Box:
        from vermilion.core.bbox import Box

        return Box(self.shape, self.origin)

    def validate(self, where: Where) -> None:
        self.origin, self.peak = _box_fields(self.origin, self.peak, where, "")
        self.span_array = user_array(self.span_array, 2, where, "span_array")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IsolatedSourceData)
            and tuple(self.origin) == tuple(other.origin)
            and tuple(self.peak) == tuple(other.peak)
            and _arrays_equal(self.span_array, other.span_array)
            and (self.metadata or {}) == (other.metadata or {})
        )


@dataclass(eq=False)
class BlendData:
    """The stored models of one blend (one parent).

    Attributes
    ----------
    origin
        ``(y0, x0)`` of the blend box, absolute.
    shape
        ``(h, w)`` of the blend box.
    sources
        ``{source_id: SourceData}``.
    psf_center
        ``(y, x)`` where the observed PSF was evaluated, or None.
    psf
        Observed PSF per band, ``(bands, ph, pw)``; None to use the patch's.
    bands
        Band names in the order of the arrays; None to use the patch's.
    model_psf
        2D model-space PSF; None to use the patch's.
    footprint
        Optional ``(h, w)`` boolean mask of the parent footprint on the blend box.
    metadata
        Free JSON-compatible metadata.
    """

    origin: tuple[int, int]
    shape: tuple[int, int]
    sources: dict[int, SourceData] = field(default_factory=dict)
    psf_center: tuple[float, float] | None = None
    psf: np.ndarray | None = None
    bands: tuple[str, ...] | None = None
    model_psf: np.ndarray | None = None
    footprint: np.ndarray | None = None
    metadata: dict[str, Any] | None = None

    @property
    def bbox(self) -> Box:
        from vermilion.core.bbox import Box

        return Box(self.shape, self.origin)

    @property
    def xy0(self) -> tuple[int, int]:
        """Rubin's ``(x0, y0)`` of the blend box."""
        return (self.origin[1], self.origin[0])

    @property
    def extent(self) -> tuple[int, int]:
        """Rubin's ``(width, height)`` of the blend box."""
        return (self.shape[1], self.shape[0])

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    @property
    def n_bands(self) -> int | None:
        if self.bands is not None:
            return len(self.bands)
        if self.psf is not None:
            return int(np.shape(self.psf)[0])
        return None

    def validate(
        self, blend_id: int | None = None, patch_bands: tuple[str, ...] | None = None
    ) -> None:
        """Check types, shapes and finiteness; raise `ModelDataError` naming the field.

        ``patch_bands``: the bands the blend inherits when it has none of its own.
        """
        where = Where(blend_id)
        try:
            self.origin = tuple(int(o) for o in self.origin)
            self.shape = tuple(int(s) for s in self.shape)
        except (TypeError, ValueError):
            raise where.error("origin and shape must be integer pairs", "origin") from None
        if len(self.origin) != 2 or len(self.shape) != 2 or min(self.shape) < 0:
            raise where.error(f"bad box origin={self.origin} shape={self.shape}", "shape")
        if self.bands is not None:
            self.bands = as_bands(self.bands, where, "bands")
        n_bands = self.n_bands
        if n_bands is None and patch_bands is not None:
            n_bands = len(patch_bands)
        if self.psf is not None:
            self.psf = user_array(self.psf, 3, where, "psf", n_bands)
        if self.model_psf is not None:
            self.model_psf = normalize_model_psf(self.model_psf, where)
        if self.psf_center is not None:
            pc = tuple(float(c) for c in self.psf_center)
            if len(pc) != 2 or not all(np.isfinite(pc)):
                raise where.error(f"bad PSF centre {self.psf_center}", "psf_center")
            self.psf_center = pc
        if self.footprint is not None:
            fp = np.asarray(self.footprint)
            if fp.shape != self.shape:
                raise where.error(
                    f"footprint shape {fp.shape} differs from the blend shape {self.shape}",
                    "footprint",
                )
            self.footprint = fp.astype(bool, copy=False)
        if not isinstance(self.sources, dict):
            raise where.error("sources must be a dict {source_id: SourceData}", "sources")
        for sid, src in self.sources.items():
            if not isinstance(src, SourceData):
                raise where.error(f"expected SourceData, got {type(src).__name__}", "sources")
            src.validate(where.source(sid), n_bands)

    def to_blend(self, observation=None, *, model_psf=None, psf=None, bands=None):
        """Rebuild a `vermilion.core.Blend` of fixed components from the stored data.

        Parameters
        ----------
        observation
            The observation to attach; without one, a `NoDataObservation` built from
            the stored PSFs and box renders the models but cannot be fitted.
        model_psf, psf, bands
            Override the stored (or inherited) values when building the observation.
        """
        from .convert import data_to_blend

        return data_to_blend(self, observation, model_psf=model_psf, psf=psf, bands=bands)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BlendData):
            return False
        return (
            tuple(self.origin) == tuple(other.origin)
            and tuple(self.shape) == tuple(other.shape)
            and self.psf_center == other.psf_center
            and self.bands == other.bands
            and _arrays_equal(self.psf, other.psf)
            and _arrays_equal(self.model_psf, other.model_psf)
            and _arrays_equal(self.footprint, other.footprint)
            and (self.metadata or {}) == (other.metadata or {})
            and self.sources == other.sources
        )

    def __repr__(self) -> str:
        return (
            f"BlendData(origin={self.origin}, shape={self.shape}, "
            f"n_sources={len(self.sources)}, bands={self.bands})"
        )


class ModelData:
    """The models of every blend of a patch, with the patch-level metadata.

    Parameters
    ----------
    bands
        Band names, in the order of every array's first axis.
    psf
        The model-space PSF (2D; a ``(1, h, w)`` cube is squeezed).
    blends
        ``{parent_id: BlendData}``.
    observed_psf
        Optional observed PSF per band ``(bands, h, w)`` for the whole patch, used by
        blends that store none of their own.
    isolated
        ``{source_id: IsolatedSourceData}`` for sources that were not deblended.
    metadata
        Free JSON-compatible metadata.
    version
        Schema version of the data model.

    Notes
    -----
    ``ModelData.read(path, blend_ids=...)`` reads any supported file (our container,
    the Rubin JSON formats and ``.scarlet`` archives), only the named blends where
    the format allows it; ``ModelData.open(path)`` gives a lazy read-only mapping;
    ``model.write(path)`` writes our container, or versioned Rubin JSON for a
    ``.json`` path, or a Rubin archive for a ``.scarlet`` path.
    """

    def __init__(
        self,
        bands: Iterable[str] | None = None,
        psf: Any = None,
        blends: Mapping[int, BlendData] | None = None,
        *,
        observed_psf: Any = None,
        isolated: Mapping[int, IsolatedSourceData] | None = None,
        metadata: dict[str, Any] | None = None,
        version: str = CURRENT_SCHEMA,
    ) -> None:
        self.bands = None if bands is None else as_bands(list(bands), NOWHERE, "bands")
        self.psf = None if psf is None else normalize_model_psf(psf)
        self.observed_psf = (
            None
            if observed_psf is None
            else user_array(
                observed_psf, 3, NOWHERE, "observed_psf", None if bands is None else len(self.bands)
            )
        )
        self.blends: dict[int, BlendData] = dict(blends) if blends else {}
        self.isolated: dict[int, IsolatedSourceData] = dict(isolated) if isolated else {}
        self.metadata: dict[str, Any] = dict(metadata) if metadata else {}
        self.version = version
        #: Name of the format this model was read from (None if built in memory).
        self.source_format: str | None = None
        #: Errors of blends left out by ``read(..., on_error="skip")``.
        self.errors: dict[int, ModelDataError] = {}

    @property
    def model_psf(self) -> np.ndarray | None:
        """The model-space PSF (same as `psf`)."""
        return self.psf

    def attach(self, blend: BlendData) -> BlendData:
        """Fill the blend's missing bands, observed PSF and model PSF from the patch."""
        if blend.bands is None:
            blend.bands = self.bands
        if blend.psf is None:
            blend.psf = self.observed_psf
        if blend.model_psf is None:
            blend.model_psf = self.psf
        return blend

    def own_fields(self, blend: BlendData) -> dict[str, Any]:
        """The blend's bands, psf and model_psf that differ from the patch's (to store)."""
        out: dict[str, Any] = {}
        if blend.bands is not None and blend.bands != self.bands:
            out["bands"] = blend.bands
        if blend.psf is not None and not _arrays_equal(blend.psf, self.observed_psf):
            out["psf"] = blend.psf
        if blend.model_psf is not None and not _arrays_equal(blend.model_psf, self.psf):
            out["model_psf"] = blend.model_psf
        return out

    def metadata_only(self) -> ModelData:
        """A copy without blends or isolated sources (for a streaming writer)."""
        out = ModelData(
            self.bands,
            self.psf,
            observed_psf=self.observed_psf,
            metadata=self.metadata,
            version=self.version,
        )
        return out

    def to_blend(self, blend_id: int, observation=None):
        """Rebuild the `vermilion.core.Blend` of one blend (see `BlendData.to_blend`)."""
        try:
            blend = self.blends[blend_id]
        except KeyError:
            raise ModelDataError("no such blend", blend_id=blend_id) from None
        return self.attach(blend).to_blend(observation)

    def validate(self) -> None:
        """Check every blend (types, shapes, finiteness)."""
        for bid, blend in self.blends.items():
            if not isinstance(blend, BlendData):
                raise ModelDataError(
                    f"expected BlendData, got {type(blend).__name__}", blend_id=bid
                )
            blend.validate(bid, self.bands)
        for sid, iso in self.isolated.items():
            iso.validate(Where(source_id=sid))

    # ---- per-band footprints of a catalog -------------------------------------------

    def update_catalog_footprints(
        self,
        catalog,
        band: str,
        psf_model: Any = None,
        redistribute_image: Any = None,
        mask_image: Any = None,
        remove_model_data: bool = True,
        update_flux_columns: bool = True,
    ) -> int:
        """Give every deblended child of ``catalog`` its heavy footprint in one band.

        As ``lsst.meas.extensions.scarlet`` ``updateCatalogFootprints``: the models of
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
            updated in place. Parents whose blend is not in this model data (skipped,
            failed, or not read) are left alone.
        band
            The band, one of ``self.bands``.
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
            Drop each blend (and isolated source) from this model data once its
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

        Notes
        -----
        Heavy footprints cover the pixels where the rendered model (or the
        re-apportioned image) is non-zero, inside the blend box; rendered models are
        convolved by FFT and values below ``1e-6`` of a source's peak (round-off)
        are dropped. A child with no such pixel gets a one-pixel footprint of
        value 0 at its peak.
        """
        from vermilion.core import weight_sources
        from vermilion.detect.footprint import HeavyFootprint

        if self.bands is None or band not in self.bands:
            raise ModelDataError(
                f"band {band!r} is not in the model data's bands {self.bands}", field="band"
            )
        b = self.bands.index(band)
        missing = [c for c in ("id", "parent", "footprint") if c not in catalog.colnames]
        if missing:
            raise ValueError(f"the catalog has no column(s) {missing}: is it a deblended catalog?")
        image = _BandImage.build(redistribute_image, mask_image, band)
        config = self.metadata.get("deblend_config") if isinstance(self.metadata, dict) else None
        config = config if isinstance(config, dict) else {}
        bad_names = config.get("badMask", ())
        bad_names = [bad_names] if isinstance(bad_names, str) else list(bad_names)
        planes = image.mask_planes if image is not None else dict(MASK_PLANES)
        bad_bits = 0
        for name in bad_names:
            bad_bits |= int(planes.get(name, 0))
        no_data_bit = int(planes.get("NO_DATA", 0))

        ids = np.asarray(catalog["id"], dtype=np.int64)
        row_of = {int(i): r for r, i in enumerate(ids.tolist())}
        is_parent = np.asarray(catalog["parent"]) == 0
        parent_ids = [int(i) for i in ids[is_parent] if int(i) in self.blends]
        if image is not None:
            for pid in parent_ids:
                image.check_covers(self.blends[pid].bbox, pid)
        peak_y = np.asarray(catalog["peak_y"]) if "peak_y" in catalog.colnames else None
        peak_x = np.asarray(catalog["peak_x"]) if "peak_x" in catalog.colnames else None
        peak_id = np.asarray(catalog["peak_id"]) if "peak_id" in catalog.colnames else None
        fp_col = catalog["footprint"]

        out = _ColumnUpdates()
        psfs = _PsfCache(psf_model, b, band, self.psf)
        for pid in parent_ids:
            blend_data = self.attach(self.blends[pid])
            parent_fp = fp_col[row_of[pid]]
            blend = _mono_blend(blend_data, pid, psfs, image, parent_fp, bad_bits)
            rows = []
            for source in blend.sources:
                sid = int(source.metadata["id"])
                row = row_of.get(sid)
                if row is None:
                    raise ModelDataError(
                        "the catalog has no record for this source of the models (are the "
                        "catalog and the model data from the same run?)",
                        blend_id=pid,
                        source_id=sid,
                    )
                rows.append(row)
            renders = _renders(blend)
            if image is not None:
                weight_sources(blend)
            total = None
            if update_flux_columns:
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
                peaks = _child_peaks(fp_col[row], row, peak_y, peak_x, peak_id)
                heavy = _heavy(values, keep, origin, peaks, band, HeavyFootprint)
                out.footprint(row, heavy)
                if not update_flux_columns:
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
                            f"deblend_dataCoverage_{band}", row, image.coverage(heavy, no_data_bit)
                        )
                py = int(peak_y[row]) if peak_y is not None else int(peaks["y"][0])
                px = int(peak_x[row]) if peak_x is not None else int(peaks["x"][0])
                out.set(
                    f"deblend_peak_instFlux_{band}", row, _value_at(values, keep, origin, py, px)
                )
                out.set(f"deblend_blendedness_{band}", row, _blendedness(entry, total, blend.bbox))
            if remove_model_data:
                self.blends.pop(pid, None)
        if image is not None:
            self._update_isolated(
                catalog,
                row_of,
                band,
                image,
                bad_bits,
                no_data_bit,
                out,
                remove_model_data,
                update_flux_columns,
            )
        out.apply(catalog, band, update_flux_columns, image is not None)
        return out.n_children

    def updateCatalogFootprints(
        self,
        catalog,
        band: str,
        psfModel: Any = None,
        redistributeImage: Any = None,
        removeScarletData: bool = True,
        updateFluxColumns: bool = True,
    ) -> int:
        """Rubin spelling of `update_catalog_footprints`."""
        return self.update_catalog_footprints(
            catalog,
            band,
            psfModel,
            redistribute_image=redistributeImage,
            remove_model_data=removeScarletData,
            update_flux_columns=updateFluxColumns,
        )

    def _update_isolated(
        self, catalog, row_of, band, image, bad_bits, no_data_bit, out, remove, update_columns
    ) -> None:
        """Isolated children (not deblended): their heavy footprint is the image in their span."""
        from vermilion.detect.footprint import HeavyFootprint

        fp_col = catalog["footprint"]
        for sid in [s for s in self.isolated if s in row_of]:
            iso = self.isolated[sid]
            row = row_of[sid]
            box = iso.bbox
            image.check_covers(box, None, source_id=sid)
            values, weights = image.cut(box, np.asarray(iso.span_array) > 0, bad_bits)
            keep = weights > 0
            fp = fp_col[row]
            peaks = fp.peaks if fp is not None and fp.n_peaks else _peaks_at(iso.peak)
            heavy = _heavy(values, keep, box.origin, peaks, band, HeavyFootprint)
            out.footprint(row, heavy)
            if update_columns:
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
                    out.set(f"deblend_dataCoverage_{band}", row, image.coverage(heavy, no_data_bit))
            if remove:
                self.isolated.pop(sid, None)

    # ---- files -------------------------------------------------------------------

    @classmethod
    def read(
        cls,
        path: str | os.PathLike,
        blend_ids: Iterable[int] | None = None,
        *,
        on_error: str = "raise",
    ) -> ModelData:
        """Read a model file of any supported format, recognised by its content.

        Parameters
        ----------
        path
            Our container, a Rubin JSON file (legacy A, legacy B / v29, versioned
            1.0.x) or a Rubin ``.scarlet`` archive.
        blend_ids
            Read only these blends (and isolated sources with these ids); through the
            index for our container, one member each for an archive.
        on_error
            ``"raise"`` (default) or ``"skip"``: leave out blends that fail to read
            (e.g. a failed checksum) and record their errors in ``model.errors``.
        """
        from .readers import open_reader

        with open_reader(path) as reader:
            return reader.read(blend_ids, on_error=on_error)

    @classmethod
    def open(cls, path: str | os.PathLike) -> ModelDataReader:
        """A lazy read-only mapping ``{blend_id: BlendData}`` over a model file."""
        from .readers import open_reader

        return open_reader(path)

    def write(
        self,
        path: str | os.PathLike,
        *,
        format: str | None = None,
        compression_level: int = 6,
        codec: str = "zstd",
    ) -> None:
        """Write atomically: our container, or by extension ``.json`` / ``.scarlet``.

        Parameters
        ----------
        path
            Destination; replaced atomically (temporary file, then ``os.replace``).
        format
            ``"container"``, ``"json"`` or ``"scarlet"``; by default from the
            extension (``.json`` and ``.scarlet``; anything else is our container).
        compression_level, codec
            Compression of the container (see `ModelDataWriter`).
        """
        fmt = format or _format_from_path(path)
        if fmt == "json":
            from .rubin import write_json

            write_json(self, path)
        elif fmt == "scarlet":
            from .rubin import write_archive

            write_archive(self, path)
        elif fmt == "container":
            from .container import ModelDataWriter

            with ModelDataWriter(path, self, compression_level=compression_level, codec=codec) as w:
                for bid, blend in self.blends.items():
                    w.add_blend(bid, blend)
                for sid, iso in self.isolated.items():
                    w.add_isolated(sid, iso)
        else:
            raise ModelDataError(f"unknown format {fmt!r}", path=os.fspath(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelData):
            return False
        if (
            self.bands != other.bands
            or not _arrays_equal(self.psf, other.psf)
            or not _arrays_equal(self.observed_psf, other.observed_psf)
            or self.metadata != other.metadata
            or self.blends.keys() != other.blends.keys()
            or self.isolated != other.isolated
        ):
            return False
        for bid, b in self.blends.items():
            if self.own_view(b) != other.own_view(other.blends[bid]):
                return False
        return True

    def own_view(self, blend: BlendData) -> BlendData:
        """The blend with inherited fields cleared (what a writer stores)."""
        own = self.own_fields(blend)
        return BlendData(
            blend.origin,
            blend.shape,
            blend.sources,
            blend.psf_center,
            own.get("psf"),
            own.get("bands"),
            own.get("model_psf"),
            blend.footprint,
            blend.metadata,
        )

    def __repr__(self) -> str:
        return (
            f"ModelData(bands={self.bands}, n_blends={len(self.blends)}, "
            f"n_isolated={len(self.isolated)}, version={self.version!r})"
        )


#: Rubin's name of `ModelData` (``lsst.scarlet.lite.io.ScarletModelData``).
ScarletModelData = ModelData


# ---- helpers of ModelData.update_catalog_footprints ------------------------------------


def _kernel(psf: Any, position: tuple[float, float] | None) -> np.ndarray:
    """A PSF image: an array as is, or ``psf.computeKernelImage(position)``."""
    if hasattr(psf, "computeKernelImage"):
        k = psf.computeKernelImage(position)
        return np.asarray(getattr(k, "array", k), dtype=np.float32)
    return np.asarray(psf, dtype=np.float32)


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
        from vermilion.core.bbox import Box

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
        """Pixels of ``box`` (0 where invalid) and their weights (1 valid, 0 not)."""
        sl = box.slices_in(self.bbox)
        img = self.image[sl]
        valid = np.isfinite(img)
        if inside is not None:
            valid &= inside
        if self.variance is not None:
            var = self.variance[sl]
            valid &= np.isfinite(var) & (var > 0)
        if self.mask is not None and bad_bits:
            valid &= (self.mask[sl] & bad_bits) == 0
        return np.where(valid, img, 0).astype(np.float32), valid.astype(np.float32)

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
        k = _kernel(self.psf_model, tuple(centre))
        return ("at", k.shape, k.tobytes()), k

    def observation(self, data: BlendData, blend_id: int, image, inside, bad_bits: int):
        import copy

        from vermilion.core import NoDataObservation, Observation

        key, kernel = self.kernel(data, blend_id)
        model_psf = data.model_psf if data.model_psf is not None else self.model_psf
        try:
            if image is not None:
                values, weights = image.cut(data.bbox, inside, bad_bits)
                return Observation(
                    values[None],
                    np.ones((1, *values.shape), np.float32),
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
    from .convert import data_to_blend

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
    from vermilion.detect.footprint import make_peaks

    return make_peaks([round(float(peak[0]))], [round(float(peak[1]))], id=0)


def _child_peaks(fp, row: int, peak_y, peak_x, peak_id):
    if fp is not None and fp.n_peaks:
        return fp.peaks
    from vermilion.detect.footprint import make_peaks

    if peak_y is None or peak_x is None:
        raise ModelDataError("the catalog has no peak_y/peak_x columns", field="catalog")
    pid = None if peak_id is None else [int(peak_id[row])]
    return make_peaks([int(peak_y[row])], [int(peak_x[row])], id=pid)


def _heavy(values: np.ndarray, keep: np.ndarray, origin, peaks, band: str, heavy_cls):
    """A one-band heavy footprint of the kept pixels (one zero pixel at the peak if none)."""
    from vermilion.detect.footprint import SpanSet

    spans = SpanSet.from_mask(keep, origin) if keep.size else SpanSet()
    if spans.is_empty:
        y, x = int(peaks["y"][0]), int(peaks["x"][0])
        return heavy_cls(SpanSet([y], [x], [x]), peaks, np.zeros((1, 1), np.float32), (band,))
    return heavy_cls(spans, peaks, values[keep][None], (band,))


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


def _format_from_path(path: str | os.PathLike) -> str:
    p = os.fspath(path).lower()
    if p.endswith(".json"):
        return "json"
    if p.endswith(".scarlet"):
        return "scarlet"
    return "container"
