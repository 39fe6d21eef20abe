"""Conversions between the engine's `Blend` and the stored `BlendData`.

`blend_to_data` stores a blend; `multiband_data_to_blend` (Rubin's
``multibandDataToScarlet``) rebuilds one on an observation, with `data_to_blend`
(`vermilion.io.rebuild`, re-exported here) underneath.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from vermilion.core.masks import MASK_PLANES, mask_bits
from vermilion.core.psf import stack_psfs

from ._fields import Where, as_source_id
from .components import CubeComponentData, FactorizedComponentData, SourceData, argmax_peak
from .data import BlendData
from .errors import ModelDataError, describe_ids
from .metadata import BACKGROUND_LEVEL_KEY, RECORDED_CONFIG_KEY
from .rebuild import data_to_blend

__all__ = [
    "blend_to_data",
    "data_to_blend",
    "multibandDataToScarlet",
    "multiband_data_to_blend",
    "psf_kernel_image",
]


def psf_kernel_image(psf: Any, position: tuple[float, float] | None) -> np.ndarray:
    """A PSF image as float32: an array as is, or ``psf.computeKernelImage(position)``.

    Parameters
    ----------
    psf
        A 2D array, or an object with ``computeKernelImage(position)`` (a Rubin or
        vermilion PSF; an image object with an ``array`` is unwrapped).
    position
        ``(y, x)`` where a spatially varying PSF is evaluated.

    Returns
    -------
    numpy.ndarray
        The kernel image.
    """
    if hasattr(psf, "computeKernelImage"):
        k = psf.computeKernelImage(position)
        return np.asarray(getattr(k, "array", k), dtype=np.float32)
    return np.asarray(psf, dtype=np.float32)


def _json_safe(meta: dict) -> dict:
    """The JSON-compatible entries of a source's metadata (others are not stored)."""
    out = {}
    for key, value in meta.items():
        if isinstance(value, tuple):
            value = list(value)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        out[str(key)] = value
    return out


def blend_to_data(blend, psf_center: tuple[float, float] | None = None) -> BlendData:
    """The stored form of a fitted (or initialized) `vermilion.core.Blend`.

    Parameters
    ----------
    blend
        The blend. Source ids come from ``source.metadata["id"]`` (the source's index
        in the blend where absent), peak ids from ``source.metadata["peak_id"]``.
    psf_center
        ``(y, x)`` where the observed PSF was evaluated; default: the observation's
        ``psf_center`` (set on blends rebuilt by `multiband_data_to_blend`), else the
        blend box centre.

    Returns
    -------
    BlendData
        With copies of every array (later changes to the blend do not alter it), the
        observation's bands, observed PSFs and model PSF; a fitted sky
        (``blend.background``) as its levels in ``metadata[BACKGROUND_LEVEL_KEY]``.
    """
    from vermilion.core import FactorizedComponent

    obs = blend.observation
    bbox = obs.bbox
    sources: dict[int, SourceData] = {}
    for i, src in enumerate(blend.sources):
        meta = dict(src.metadata or {})
        sid = as_source_id(meta.pop("id", i), Where(), "source id")
        if sid in sources:
            raise ModelDataError("two sources of the blend have this id", source_id=sid)
        peak_id = meta.pop("peak_id", None)
        comps: list = []
        for c in src.components:
            peak = c.peak
            if isinstance(c, FactorizedComponent):
                morph = np.array(c.morph, dtype=np.float32)
                if peak is None:
                    peak = argmax_peak(morph, c.bbox.origin)
                comps.append(
                    FactorizedComponentData(
                        tuple(c.bbox.origin), tuple(peak), np.array(c.spectrum, np.float32), morph
                    )
                )
            else:
                model = np.array(c.model_array(), dtype=np.float32)
                if peak is None:
                    peak = argmax_peak(model, c.bbox.origin)
                comps.append(CubeComponentData(tuple(c.bbox.origin), tuple(peak), model))
        sources[sid] = SourceData(
            comps, None if peak_id is None else int(peak_id), _json_safe(meta) or None
        )
    if psf_center is None:
        psf_center = getattr(obs, "psf_center", None) or bbox.center
    data = BlendData(
        tuple(bbox.origin),
        tuple(bbox.shape),
        sources,
        psf_center=tuple(float(c) for c in psf_center),
        psf=np.array(obs.psfs, dtype=np.float32),
        bands=tuple(obs.bands),
        model_psf=np.array(obs.model_psf, dtype=np.float32),
    )
    background = getattr(blend, "background", None)
    if background is not None:
        levels = {b: float(v) for b, v in zip(obs.bands, background.level)}
        data.metadata = {**(data.metadata or {}), BACKGROUND_LEVEL_KEY: levels}
    data.validate()
    return data


def _stored_config(model_data) -> dict:
    """The deblender configuration recorded with the models (empty when absent)."""
    metadata = getattr(model_data, "metadata", None) or {}
    config = metadata.get(RECORDED_CONFIG_KEY) if isinstance(metadata, dict) else None
    return config if isinstance(config, dict) else {}


def exposure_mask_bits(mexposure, names) -> int:
    """Bits of the named mask planes of an exposure (planes it lacks are ignored)."""
    return mask_bits(names, getattr(mexposure, "mask_planes", None) or MASK_PLANES, strict=False)


def _as_dtype(dtype) -> np.dtype:
    try:
        out = np.dtype(dtype)
    except TypeError:
        raise ModelDataError(f"dtype {dtype!r} is not a numpy dtype", field="dtype") from None
    if out.kind != "f":
        raise ModelDataError(f"dtype must be a floating type, got {out}", field="dtype")
    return out


def _blend_data(model_data, blend_id) -> tuple[int, BlendData]:
    """The stored blend ``blend_id`` with the patch's bands and PSFs attached."""
    if hasattr(blend_id, "getId"):  # a catalog record
        blend_id = blend_id.getId()
    try:
        bid = int(blend_id)
    except (TypeError, ValueError):
        raise ModelDataError(f"blend id {blend_id!r} is not an integer") from None
    if hasattr(model_data, "attach"):
        blend = model_data.blends.get(bid)
        if blend is None:
            parent = _parent_of(model_data.blends.items(), bid)
            if parent is not None:
                raise ModelDataError(
                    f"this id is a child (a source) of parent {parent}; give the parent's id",
                    blend_id=bid,
                )
            n = len(model_data.blends)
            hint = (
                f" (the model data holds only blend {next(iter(model_data.blends))}: "
                "was it read with other blend_ids?)"
                if n == 1
                else f" ({describe_ids(model_data.blends)}; a parent that was skipped or "
                "failed has no models)"
            )
            raise ModelDataError("no such blend" + hint, blend_id=bid)
        return bid, model_data.attach(blend)
    try:
        return bid, model_data[bid]
    except KeyError:
        raise ModelDataError(
            f"no such blend in the model file ({describe_ids(model_data.blend_ids())})",
            blend_id=bid,
        ) from None


def _parent_of(blends, source_id: int) -> int | None:
    """The parent whose blend holds source ``source_id``, or None."""
    for pid, blend in blends:
        if source_id in blend.sources:
            return int(pid)
    return None


def _observed_psfs(observed_psfs, bands: tuple[str, ...], centre, blend_id: int) -> np.ndarray:
    """One PSF image per band from a sequence (model band order) or a ``{band: psf}`` mapping."""
    if isinstance(observed_psfs, Mapping):
        given = [str(b) for b in observed_psfs]
        missing = [b for b in bands if b not in given]
        if missing:
            raise ModelDataError(
                f"no observed PSF for band(s) {missing} of the models (PSFs given for {given})",
                blend_id=blend_id,
                field="observed_psfs",
            )
        items = [observed_psfs[b] for b in bands]
    else:
        if isinstance(observed_psfs, np.ndarray) and observed_psfs.ndim == 2:
            observed_psfs = observed_psfs[None]
        items = list(observed_psfs)
        if len(items) != len(bands):
            raise ModelDataError(
                f"{len(items)} observed PSFs for {len(bands)} bands {list(bands)} "
                "(give one per band of the models, in their order, or a {band: psf} mapping)",
                blend_id=blend_id,
                field="observed_psfs",
            )
    kernels = []
    for band, psf in zip(bands, items):
        try:
            k = psf_kernel_image(psf, centre)
        except Exception as e:
            raise ModelDataError(
                f"the PSF of band {band!r} cannot be evaluated at {centre}: {e}",
                blend_id=blend_id,
                field="observed_psfs",
            ) from e
        if (
            k.ndim != 2
            or k.shape[0] % 2 == 0
            or k.shape[1] % 2 == 0
            or not np.all(np.isfinite(k))
            or k.sum() <= 0
        ):
            raise ModelDataError(
                f"the PSF of band {band!r} must be a finite, odd-sized 2D image with a positive "
                f"sum, got shape {k.shape}",
                blend_id=blend_id,
                field="observed_psfs",
            )
        kernels.append(k)
    return stack_psfs(kernels)


class _ExposureCutout:
    """The blend's box of an exposure, in the models' band order (what the pipeline fitted)."""

    def __init__(self, images, variance, mask, psfs, bands, bbox, mask_planes) -> None:
        self.images = images
        self.variance = variance
        self.mask = mask
        self.psfs = psfs
        self.bands = bands
        self.bbox = bbox
        self.mask_planes = mask_planes


def exposure_psfs(mexposure, centre: tuple[float, float]) -> np.ndarray:
    """The exposure's PSFs at ``centre``, evaluated as the pipeline does (`DeblendTask`)."""
    if hasattr(mexposure, "computePsfKernelImage"):
        return np.asarray(mexposure.computePsfKernelImage(centre), np.float32)
    if hasattr(mexposure, "psf_at"):
        # vermilion.sim: coordinates relative to the patch's first pixel
        oy, ox = _box_of(mexposure).origin
        return np.asarray(mexposure.psf_at(centre[0] - oy, centre[1] - ox), np.float32)
    return np.asarray(mexposure.psfs, np.float32)


def _box_of(mexposure):
    from vermilion.core.bbox import Box

    box = mexposure.bbox
    if isinstance(box, Box):
        return box
    shape = np.shape(mexposure.images)[-2:]
    return Box(tuple(shape), tuple(box))


def _cutout(mexposure, data: BlendData, bands: tuple[str, ...], blend_id: int) -> _ExposureCutout:
    """Check that the exposure covers the blend in every band; cut the blend's box out."""
    for name in ("images", "variance", "bands", "bbox"):
        if getattr(mexposure, name, None) is None:
            raise ModelDataError(
                f"the exposure has no {name!r} (it needs images, variance, mask, PSFs, bands "
                "and bbox, like vermilion.repo.MultibandExposure)",
                blend_id=blend_id,
                field="mexposure",
            )
    exp_bands = tuple(str(b) for b in mexposure.bands)
    missing = [b for b in bands if b not in exp_bands]
    if missing:
        raise ModelDataError(
            f"the exposure has no band(s) {missing} of the models (exposure bands "
            f"{list(exp_bands)}, model bands {list(bands)})",
            blend_id=blend_id,
            field="mexposure",
        )
    ebox = _box_of(mexposure)
    bbox = data.bbox
    if (bbox & ebox) != bbox:
        raise ModelDataError(
            f"the exposure covers {ebox}, not the whole blend box {bbox}: read the cutout "
            "with parameters={'bbox': blend_data.bbox}",
            blend_id=blend_id,
            field="mexposure",
        )
    idx = [exp_bands.index(b) for b in bands]
    same = idx == list(range(len(exp_bands)))
    sel = slice(None) if same else idx
    cut = bbox.slices_in(ebox)

    def take(arr):
        if arr is None:
            return None
        arr = np.asarray(arr)
        if arr.shape[0] != len(exp_bands):
            raise ModelDataError(
                f"an exposure array has {arr.shape[0]} bands for {len(exp_bands)} band names",
                blend_id=blend_id,
                field="mexposure",
            )
        return arr[(slice(None), *cut)][sel]

    centre = data.psf_center if data.psf_center is not None else bbox.center
    try:
        psfs = exposure_psfs(mexposure, centre)
    except Exception as e:
        raise ModelDataError(
            f"the exposure's PSF cannot be evaluated at {centre}: {e}",
            blend_id=blend_id,
            field="mexposure",
        ) from e
    if psfs.ndim != 3 or psfs.shape[0] != len(exp_bands):
        raise ModelDataError(
            f"the exposure's PSFs have shape {psfs.shape}, expected one image per band "
            f"{list(exp_bands)}",
            blend_id=blend_id,
            field="mexposure",
        )
    return _ExposureCutout(
        take(mexposure.images),
        take(mexposure.variance),
        take(getattr(mexposure, "mask", None)),
        psfs[sel],
        bands,
        bbox,
        getattr(mexposure, "mask_planes", None),
    )


class _MaskFootprint:
    """A boolean mask on a box, read by `observation_from_exposure` like a footprint."""

    def __init__(self, mask: np.ndarray, bbox) -> None:
        self.bbox = bbox
        self.spans = self
        self._mask = mask

    def as_array(self) -> np.ndarray:
        return self._mask


def _footprint(footprint, data: BlendData, blend_id: int):
    """A footprint object, or a boolean ``(h, w)`` mask on the blend box.

    A footprint with no pixel in the blend box (another parent's) is refused: every
    pixel would get zero weight and the fit would silently see no data.
    """
    owner = "the footprint given"
    if hasattr(footprint, "getFootprint"):  # a catalog record
        record_id = footprint.getId() if hasattr(footprint, "getId") else None
        if record_id is not None and int(record_id) != int(blend_id):
            owner = f"the footprint of record {int(record_id)}"
        footprint = footprint.getFootprint()
    if footprint is None:
        return footprint
    if hasattr(footprint, "spans"):
        _check_overlap(footprint, data, blend_id, owner)
        return footprint
    mask = np.asarray(footprint)
    if mask.shape != tuple(data.shape):
        raise ModelDataError(
            f"a footprint mask must have the blend's shape {tuple(data.shape)}, got {mask.shape}",
            blend_id=blend_id,
            field="footprint",
        )
    if not mask.any():
        raise ModelDataError(
            "the footprint mask given has no pixel set: every pixel would get zero weight",
            blend_id=blend_id,
            field="footprint",
        )
    return _MaskFootprint(mask.astype(bool), data.bbox)


def _check_overlap(footprint, data: BlendData, blend_id: int, owner: str) -> None:
    """Raise when ``footprint`` has no pixel inside the blend box."""
    from vermilion.core.bbox import Box

    fbox = footprint.bbox if isinstance(footprint.bbox, Box) else footprint.getBBox()
    if not isinstance(fbox, Box):  # an lsst.geom.Box2I
        fbox = Box((fbox.getHeight(), fbox.getWidth()), (fbox.getMinY(), fbox.getMinX()))
    inside = 0
    if fbox.overlaps(data.bbox):
        _, s_fp = data.bbox.overlapped_slices(fbox)
        inside = int(np.count_nonzero(np.asarray(footprint.spans.as_array())[s_fp]))
    if inside == 0:
        raise ModelDataError(
            f"{owner} (box {fbox}) does not overlap blend {blend_id} (box {data.bbox}): "
            "every pixel would get zero weight; give this blend's own parent footprint",
            blend_id=blend_id,
            field="footprint",
        )


def multiband_data_to_blend(
    model_data,
    blend_id: int,
    observed_psfs=None,
    mexposure=None,
    footprint=None,
    dtype=np.float32,
    *,
    bad_mask: int | None = None,
    convolution_mode: str | None = None,
):
    """Rebuild one stored blend, as ``lsst.meas.extensions.scarlet.io.multibandDataToScarlet``.

    Parameters
    ----------
    model_data
        A `ModelData` or a reader from ``ModelData.open`` (only this blend is read).
    blend_id
        The parent id (or the parent record).
    observed_psfs
        One PSF per band of the model, in the model's band order, or a mapping
        ``{band: psf}`` (arrays, or objects with ``computeKernelImage(position)``,
        evaluated at the blend's PSF centre); replaces the stored observed PSF.
    mexposure
        A multi-band exposure (or cutout) covering the blend: the blend gets a real
        observation, ready to fit and to re-apportion flux. It is built as the
        pipeline built it: the exposure's PSF evaluated at the blend's stored PSF
        centre (where the pipeline evaluated a spatially varying PSF), the bands in
        the models' order, the stored configuration's mask planes, weights and
        convolution.
    footprint
        With ``mexposure``: the parent footprint (or the parent record, or a boolean
        mask on the blend box); pixels outside it get zero weight, as in the
        pipeline's fit.
    dtype
        Floating type of the rebuilt components' arrays (float32, as stored).
    bad_mask
        With ``mexposure``: mask bits whose pixels get zero weight. Default: the
        ``badMask`` planes of the deblender configuration stored with the models
        (so the observation is the one the pipeline fitted), else none.
    convolution_mode
        ``"fft"`` or ``"real"``; default: the stored configuration's
        ``convolutionType``, else ``"fft"`` (exact linear convolution, no wrap).

    Returns
    -------
    vermilion.core.Blend
        Without ``mexposure``: on a `NoDataObservation` (render only). The
        observation records the PSF centre as ``observation.psf_center``, which
        `blend_to_data` stores again.

    Raises
    ------
    ModelDataError
        Naming the blend (and the band or field): a blend that is not in the model
        data, PSFs for other bands or another number of bands, an exposure without
        the models' bands or that does not cover the blend box.
    """
    from vermilion.core import NoDataObservation, observation_from_exposure

    bid, data = _blend_data(model_data, blend_id)
    dtype = _as_dtype(dtype)
    config = _stored_config(model_data)
    if convolution_mode is None:
        convolution_mode = str(config.get("convolutionType", "fft"))
    bands = tuple(data.bands or ())
    centre = data.psf_center if data.psf_center is not None else data.bbox.center
    try:
        if mexposure is not None:
            if not bands:
                raise ModelDataError("the stored blend has no bands", field="bands")
            cut = _cutout(mexposure, data, bands, bid)
            if bad_mask is None:
                bad_mask = exposure_mask_bits(cut, config.get("badMask", ()))
            fp = _footprint(footprint, data, bid)
            try:
                observation = observation_from_exposure(
                    cut,
                    bbox=data.bbox,
                    footprint=fp,
                    bad_mask=bad_mask,
                    model_psf=data.model_psf,
                    use_weights=bool(config.get("useWeights", True)),
                    convolution_mode=convolution_mode,
                )
            except ValueError as e:
                raise ModelDataError(f"cannot build the observation: {e}", field="mexposure") from e
        elif observed_psfs is not None:
            psfs = _observed_psfs(observed_psfs, bands, centre, bid)
            try:
                observation = NoDataObservation(
                    psfs, data.model_psf, bands, data.bbox, convolution_mode=convolution_mode
                )
            except ValueError as e:
                raise ModelDataError(
                    f"cannot build the observation: {e}", field="observed_psfs"
                ) from e
        else:
            observation = None
        blend = data_to_blend(data, observation, dtype=dtype)
    except ModelDataError as e:
        raise e.with_context(blend_id=bid) from None
    blend.observation.psf_center = tuple(float(c) for c in centre)
    blend.metadata["parent_id"] = bid
    return blend


def multibandDataToScarlet(
    modelData,
    blendId: int,
    observedPsfs=None,
    mExposure=None,
    footprint=None,
    dtype=np.float32,
    **kwargs,
):
    """Rubin spelling of `multiband_data_to_blend` (same arguments, camelCase)."""
    return multiband_data_to_blend(
        modelData,
        blendId,
        observed_psfs=observedPsfs,
        mexposure=mExposure,
        footprint=footprint,
        dtype=dtype,
        **kwargs,
    )
