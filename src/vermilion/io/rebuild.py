"""Stored models back to the engine: `data_to_blend` rebuilds a `vermilion.core.Blend`.

`vermilion.core` is imported only when a conversion is called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .components import FactorizedComponentData
from .errors import ModelDataError
from .metadata import BACKGROUND_LEVEL_KEY

__all__ = ["data_to_blend"]


def data_to_blend(
    data: Any,
    observation=None,
    *,
    model_psf: Any = None,
    psf: Any = None,
    bands: Any = None,
    dtype: Any = None,
):
    """Rebuild a `vermilion.core.Blend` of fixed components (see `BlendData.to_blend`).

    ``data`` is a `vermilion.io.BlendData` (this module does not import it: the data
    classes call this one). ``dtype`` casts the components' arrays (default: as stored, float32).
    """
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
                morph = c.morph.copy()
                if dtype is not None:
                    spectrum, morph = spectrum.astype(dtype), morph.astype(dtype)
                comps.append(FactorizedComponent(obs_bands, spectrum, morph, box, peak))
            else:
                model = c.model.copy() if select is None else c.model[select]
                if dtype is not None:
                    model = model.astype(dtype)
                comps.append(CubeComponent(obs_bands, model, box, peak))
        meta = dict(src.metadata or {})
        meta["id"] = sid
        if src.peak_id is not None:
            meta["peak_id"] = src.peak_id
        sources.append(Source(comps, meta))
    return Blend(sources, observation, background=_background(data, obs_bands, observation))


def _background(data: Any, bands: tuple[str, ...], observation: Any):
    """The fitted sky of the blend (`BACKGROUND_LEVEL_KEY` in its metadata), or None.

    Its level is fixed: it is added to the model and taken out of the image before
    re-apportioning, and a refit keeps it.
    """
    from vermilion.core import BackgroundComponent

    levels = (data.metadata or {}).get(BACKGROUND_LEVEL_KEY)
    if levels is None:
        return None
    if not isinstance(levels, dict) or any(b not in levels for b in bands):
        raise ModelDataError(
            f"the fitted sky levels {levels!r} do not name every band of {bands}",
            field=f"metadata.{BACKGROUND_LEVEL_KEY}",
        )
    level = np.array([float(levels[b]) for b in bands], np.float32)
    # the pixels it was fitted on are not stored: it stays fixed unless given them again
    # (`vermilion.core.BackgroundComponent.set_sky`, then ``fixed = False``)
    return BackgroundComponent(bands, level, observation.bbox, fixed=True)


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
