"""Conversions between the engine's `Blend` and the stored `BlendData`.

`vermilion.core` is imported only when a conversion is called.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ._fields import Where, as_id
from .data import (
    BlendData,
    CubeComponentData,
    FactorizedComponentData,
    SourceData,
    argmax_peak,
)
from .errors import ModelDataError

__all__ = [
    "blend_to_data",
    "data_to_blend",
    "multibandDataToScarlet",
    "multiband_data_to_blend",
]


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
        ``(y, x)`` where the observed PSF was evaluated; the blend box centre by default.

    Returns
    -------
    BlendData
        With copies of every array (later changes to the blend do not alter it), the
        observation's bands, observed PSFs and model PSF.
    """
    from vermilion.core import FactorizedComponent

    obs = blend.observation
    bbox = obs.bbox
    sources: dict[int, SourceData] = {}
    for i, src in enumerate(blend.sources):
        meta = dict(src.metadata or {})
        sid = as_id(meta.pop("id", i), Where(), "source id")
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
        psf_center = bbox.center
    data = BlendData(
        tuple(bbox.origin),
        tuple(bbox.shape),
        sources,
        psf_center=tuple(float(c) for c in psf_center),
        psf=np.array(obs.psfs, dtype=np.float32),
        bands=tuple(obs.bands),
        model_psf=np.array(obs.model_psf, dtype=np.float32),
    )
    data.validate()
    return data


def data_to_blend(
    data: BlendData,
    observation=None,
    *,
    model_psf: Any = None,
    psf: Any = None,
    bands: Any = None,
):
    """Rebuild a `vermilion.core.Blend` of fixed components (see `BlendData.to_blend`)."""
    from vermilion.core import Blend, CubeComponent, FactorizedComponent, NoDataObservation, Source
    from vermilion.core.bbox import Box

    if observation is None:
        bands = tuple(bands if bands is not None else data.bands or ())
        psf = psf if psf is not None else data.psf
        model_psf = model_psf if model_psf is not None else data.model_psf
        if not bands:
            raise ModelDataError(
                "no bands: pass bands= or read the blend through ModelData", field="bands"
            )
        if psf is None:
            raise ModelDataError(
                "no observed PSF: pass psf= (or an observation) or read the blend through "
                "ModelData",
                field="psf",
            )
        if model_psf is None:
            raise ModelDataError("no model PSF: pass model_psf=", field="model_psf")
        try:
            observation = NoDataObservation(
                psf, model_psf, bands, data.bbox, convolution_mode="fft"
            )
        except ValueError as e:
            raise ModelDataError(f"cannot build the observation: {e}", field="psf") from e
    obs_bands = tuple(observation.bands)
    select = _band_selection(data.bands, obs_bands)
    sources = []
    for sid, src in data.sources.items():
        comps = []
        for i, c in enumerate(src.components):
            n = len(obs_bands) if select is None else len(data.bands)
            if c.n_bands != n:
                raise ModelDataError(
                    f"{c.n_bands} bands in the component, {n} expected",
                    source_id=sid,
                    field=f"components[{i}]",
                )
            box = Box(c.shape, c.origin)
            peak = (int(np.round(c.peak[0])), int(np.round(c.peak[1])))
            if isinstance(c, FactorizedComponentData):
                spectrum = c.spectrum.copy() if select is None else c.spectrum[select]
                comps.append(FactorizedComponent(obs_bands, spectrum, c.morph.copy(), box, peak))
            else:
                model = c.model.copy() if select is None else c.model[select]
                comps.append(CubeComponent(obs_bands, model, box, peak))
        meta = dict(src.metadata or {})
        meta["id"] = sid
        if src.peak_id is not None:
            meta["peak_id"] = src.peak_id
        sources.append(Source(comps, meta))
    return Blend(sources, observation)


def _band_selection(stored: tuple[str, ...] | None, wanted: tuple[str, ...]) -> list[int] | None:
    """Indices of ``wanted`` bands in the ``stored`` order (None: same order)."""
    if stored is None or tuple(stored) == tuple(wanted):
        return None
    missing = [b for b in wanted if b not in stored]
    if missing:
        raise ModelDataError(
            f"the observation's bands {missing} are not in the stored bands {stored}",
            field="bands",
        )
    return [stored.index(b) for b in wanted]


def _kernel(psf: Any, position: tuple[float, float] | None) -> np.ndarray:
    """A PSF image: an array as is, or ``psf.computeKernelImage(position)``."""
    if hasattr(psf, "computeKernelImage"):
        k = psf.computeKernelImage(position)
        return np.asarray(getattr(k, "array", k), dtype=np.float32)
    return np.asarray(psf, dtype=np.float32)


#: The mask planes shared by vermilion's exposures and simulations (repo.MASK_PLANES).
_DEFAULT_MASK_PLANES = {"BAD": 1, "SAT": 2, "NO_DATA": 4, "EDGE": 8}


def _stored_config(model_data) -> dict:
    """The deblender configuration recorded with the models (empty when absent)."""
    metadata = getattr(model_data, "metadata", None) or {}
    config = metadata.get("deblend_config") if isinstance(metadata, dict) else None
    return config if isinstance(config, dict) else {}


def _mask_bits(mexposure, names) -> int:
    if isinstance(names, str):
        names = [names]
    planes = getattr(mexposure, "mask_planes", None) or _DEFAULT_MASK_PLANES
    bits = 0
    for name in names:
        bits |= int(planes.get(name, 0))
    return bits


def multiband_data_to_blend(
    model_data,
    blend_id: int,
    observed_psfs=None,
    mexposure=None,
    footprint=None,
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
        The parent id.
    observed_psfs
        One PSF per band of the model (arrays, or objects with
        ``computeKernelImage(position)``, evaluated at the blend's PSF centre);
        replaces the stored observed PSF.
    mexposure
        A multi-band exposure (or cutout) covering the blend: the blend gets a real
        observation, ready to fit and to re-apportion flux.
    footprint
        With ``mexposure``: the parent footprint; pixels outside it get zero weight.
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
        Without ``mexposure``: on a `NoDataObservation` (render only).
    """
    from vermilion.core import NoDataObservation, observation_from_exposure

    if hasattr(model_data, "attach"):
        try:
            data = model_data.attach(model_data.blends[blend_id])
        except KeyError:
            raise ModelDataError("no such blend", blend_id=blend_id) from None
    else:
        data = model_data[blend_id]
    config = _stored_config(model_data)
    if convolution_mode is None:
        convolution_mode = str(config.get("convolutionType", "fft"))
    try:
        if mexposure is not None:
            if bad_mask is None:
                bad_mask = _mask_bits(mexposure, config.get("badMask", ()))
            observation = observation_from_exposure(
                mexposure,
                bbox=data.bbox,
                footprint=footprint,
                bad_mask=bad_mask,
                model_psf=data.model_psf,
                use_weights=bool(config.get("useWeights", True)),
                convolution_mode=convolution_mode,
            )
        elif observed_psfs is not None:
            bands = data.bands or ()
            if len(observed_psfs) != len(bands):
                raise ModelDataError(
                    f"{len(observed_psfs)} observed PSFs for {len(bands)} bands",
                    blend_id=blend_id,
                    field="observed_psfs",
                )
            centre = data.psf_center or data.bbox.center
            psfs = np.stack([_kernel(p, centre) for p in observed_psfs])
            observation = NoDataObservation(
                psfs, data.model_psf, bands, data.bbox, convolution_mode=convolution_mode
            )
        else:
            observation = None
        return data.to_blend(observation)
    except ModelDataError as e:
        raise e.with_context(blend_id=blend_id) from None


def multibandDataToScarlet(
    modelData,
    blendId: int,
    observedPsfs=None,
    mExposure=None,
    footprint=None,
    **kwargs,
):
    """Rubin spelling of `multiband_data_to_blend` (same arguments, camelCase)."""
    return multiband_data_to_blend(
        modelData,
        blendId,
        observed_psfs=observedPsfs,
        mexposure=mExposure,
        footprint=footprint,
        **kwargs,
    )
