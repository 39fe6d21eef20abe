"""What the pictures show of a blend: its observed images, sources, models and spectra.

Plain numpy (no matplotlib): the data side of `vermilion.display.plot`, `.panels`, `.mosaic`,
`.pictures` and `.report`, which all read a blend through these functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .rgb import UINT8_MAX, AsinhMapping, Mapping, asinh_norm, img_to_3channel, pixel_array

__all__ = [
    "chosen_sources",
    "component_spectra",
    "default_norm",
    "image_extent",
    "model_norm",
    "observation_has_data",
    "observed_images",
    "observed_noise_rms",
    "on_box",
    "peak_xy",
    "render_source",
    "require_data",
    "resolve_mask",
    "resolve_sources",
    "source_model",
    "source_name",
    "source_on_blend",
    "source_titles",
    "spectrum_of",
    "spread_labels",
]


def image_extent(bbox) -> tuple[float, float, float, float]:
    """imshow extent of a box so that pixel (y, x) is centred on coordinate (y, x)."""
    (y0, x0), (h, w) = bbox.origin[-2:], bbox.shape[-2:]
    return (x0 - 0.5, x0 + w - 0.5, y0 - 0.5, y0 + h - 0.5)


def observation_has_data(observation) -> bool:
    """Whether the observation carries image data (a `NoDataObservation` does not)."""
    return bool(getattr(observation, "has_data", True))


def require_data(observation, what: str) -> None:
    """Raise ValueError naming ``what`` when the observation has no image data."""
    if not observation_has_data(observation):
        raise ValueError(
            f"Cannot show the {what}: the blend's observation has no image data "
            "(rebuild the blend with the exposure cutout)"
        )


def observed_images(observation) -> np.ndarray:
    """The observed images ``(bands, h, w)`` as float32."""
    return np.asarray(pixel_array(observation.images), dtype=np.float32)


def observed_noise_rms(observation):
    """The observation's per-band noise RMS, or None when unknown or not positive."""
    rms = getattr(observation, "noise_rms", None)
    if rms is None:
        return None
    rms = np.asarray(rms, dtype=np.float64)
    if rms.size == 0 or not np.all(np.isfinite(rms)) or not np.any(rms > 0):
        return None
    return rms


def default_norm(blend, channel_map: np.ndarray | None = None, Q: float = 10.0) -> Mapping:
    """The `AsinhMapping` used when no ``norm`` is given: tuned to the blend's data.

    With image data the stretch follows the observed image and its noise (see
    `asinh_norm`: the bright end saturates, the sky noise stays faint); without data,
    the rendered model.
    """
    observation = blend.observation
    if observation_has_data(observation):
        return asinh_norm(
            observed_images(observation),
            channel_map=channel_map,
            Q=Q,
            noise_rms=observed_noise_rms(observation),
        )
    return model_norm(pixel_array(blend.get_model(convolve=False)), channel_map, Q)


def model_norm(model, channel_map: np.ndarray | None = None, Q: float = 10.0) -> AsinhMapping:
    """The stretch of a blend without data (rebuilt from its PSFs alone): from its model.

    The model in model space has the highest peaks; the stretch is the smallest that
    leaves every pixel below full scale in every channel (the mapping scales a
    saturated pixel down as a whole, so a red source saturates at a third of the
    intensity of a grey one), so only the brightest pixel reaches 255.

    Parameters
    ----------
    model
        ``(bands, h, w)`` model.
    channel_map, Q
        As for `asinh_norm`.

    Returns
    -------
    AsinhMapping
    """
    data = np.asarray(pixel_array(model), dtype=np.float64)
    if data.ndim == 2:
        data = data[None]
    base = asinh_norm(data, channel_map=channel_map, Q=Q, saturate_percentile=100.0)
    rgb = img_to_3channel(data, channel_map)
    peak = rgb.max(axis=0)
    if not np.isfinite(peak).any() or not np.nanmax(peak) > 0:
        return base
    # only the brightest pixels can saturate first
    top = rgb[:, peak >= np.nanpercentile(peak, 99)][:, :, None]
    lo, hi = base.stretch, base.stretch
    while AsinhMapping(0.0, hi, Q).map_float(top).max() >= UINT8_MAX - 0.5 and hi < 1e12 * lo:
        hi *= 2
    for _ in range(30):  # bisection in log: the smallest stretch below full scale
        mid = float(np.sqrt(lo * hi))
        if AsinhMapping(0.0, mid, Q).map_float(top).max() >= UINT8_MAX - 0.5:
            lo = mid
        else:
            hi = mid
    return AsinhMapping(0.0, hi, Q)


def _source_index(blend, src, fallback: int) -> int:
    for i, s in enumerate(blend.sources):
        if s is src:
            return i
    return fallback


def resolve_sources(blend, sources) -> list[tuple[int, Any]]:
    """``[(index in blend.sources, source)]`` for non-null sources."""
    all_sources = list(blend.sources)
    if sources is None:
        chosen = list(enumerate(all_sources))
    else:
        if isinstance(sources, (int, np.integer)):
            raise TypeError("sources must be a sequence of sources or of indices, not a number")
        chosen = []
        for n, s in enumerate(sources):
            if isinstance(s, (int, np.integer)):
                if not -len(all_sources) <= s < len(all_sources):
                    raise ValueError(
                        f"source index {s} out of range for a blend of {len(all_sources)} sources"
                    )
                chosen.append((int(s) % len(all_sources), all_sources[s]))
            else:
                chosen.append((_source_index(blend, s, n), s))
    return [(i, s) for i, s in chosen if not getattr(s, "is_null", False)]


def peak_xy(src) -> tuple[float, float] | None:
    """``(x, y)`` of a source's peak (else its centre), or None."""
    peak = getattr(src, "peak", None)
    if peak is None:
        peak = getattr(src, "center", None)
    if peak is None:
        return None
    return float(peak[1]), float(peak[0])


def on_box(image, bbox) -> np.ndarray:
    """Pixels of an ``Image`` (or array) laid on ``bbox``."""
    if isinstance(image, np.ndarray):
        return image
    bbox = bbox[-2:] if bbox.ndim > 2 else bbox
    if image.bbox != bbox:
        image = image.project(bbox)
    return np.asarray(pixel_array(image))


def resolve_mask(mask, blend) -> np.ndarray | None:
    """The ``(h, w)`` boolean hide-mask of a ``mask`` argument (None, array or ``"weights"``)."""
    if mask is None or mask is False:
        return None
    if isinstance(mask, str):
        if mask != "weights":
            raise ValueError(f"mask must be a boolean array, None or 'weights', got {mask!r}")
        observation = blend.observation
        require_data(observation, "footprint mask")
        return np.all(pixel_array(observation.weights) <= 0, axis=0)
    mask = np.asarray(mask, dtype=bool)
    shape = tuple(blend.observation.bbox.shape[-2:])
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} differs from the blend box shape {shape}")
    return mask


def source_model(src, use_flux: bool):
    """A source's model, or its re-apportioned flux when ``use_flux``."""
    if use_flux:
        if getattr(src, "flux", None) is None:
            raise ValueError(
                "Source has no re-apportioned flux: run weight_sources(blend) before use_flux=True"
            )
        return src.get_model(use_flux=True)
    return src.get_model()


def render_source(blend, model) -> np.ndarray:
    """A source model laid on the blend box and convolved to the observed PSFs."""
    from vermilion.core.image import Image

    observation = blend.observation
    bands = tuple(getattr(observation, "bands", ()) or getattr(model, "bands", ()))
    full = Image.from_box(observation.bbox[-2:], bands=bands or None)
    full.insert(model)
    return np.asarray(pixel_array(observation.convolve(full)))


def source_on_blend(blend, model, use_flux: bool) -> np.ndarray:
    """A source alone on the blend box: its re-apportioned flux as is, or its model rendered."""
    if use_flux:
        return on_box(model, blend.observation.bbox)
    return render_source(blend, model)


def chosen_sources(blend, sources, max_sources: int | None) -> tuple[list[tuple[int, Any]], int]:
    """The non-null sources to show (at most ``max_sources``) and how many there are in all."""
    chosen = resolve_sources(blend, sources)
    n_total = len(chosen)
    if max_sources is not None:
        chosen = chosen[:max_sources]
    if not chosen:
        raise ValueError("No (non-null) source to show")
    return chosen, n_total


def component_spectra(src, use_flux: bool) -> list[tuple[int, np.ndarray]]:
    """``[(index, spectrum)]`` of the components of a source with several (none for its flux)."""
    components = list(getattr(src, "components", []) or [])
    if use_flux or len(components) < 2:
        return []
    out = []
    for c, comp in enumerate(components):
        try:
            out.append((c, spectrum_of(comp.get_model())))
        except (AttributeError, TypeError, ValueError):
            continue
    return out


def spectrum_of(model) -> np.ndarray:
    """Flux per band of a model (``(bands,)``, float64)."""
    data = np.asarray(pixel_array(model), dtype=np.float64)
    if data.ndim == 2:
        data = data[None]
    return data.sum(axis=(1, 2))


def source_name(index: int, src) -> str:
    """How pictures name a source: ``"source 2 (id 8796093022211)"``, or ``"source 2"``.

    The index is the source's place in ``blend.sources`` (the number written at its
    peak in the scene); the id is the catalog id stored in ``source.metadata["id"]``.
    """
    sid = (getattr(src, "metadata", None) or {}).get("id")
    return f"source {index}" if sid is None else f"source {index} (id {sid})"


def source_titles(index: int, src, use_flux: bool = False) -> tuple[str, str]:
    """Titles of a source's model panel and rendered panel, the same in every picture.

    Returns
    -------
    model_title, rendered_title
        ``("source 2 (id 87...)", "Model 2 rendered")``, or with ``use_flux``
        ``("Flux: source 2 (id 87...)", "Flux 2")``.
    """
    name = source_name(index, src)
    if use_flux:
        return f"Flux: {name}", f"Flux {index}"
    return name, f"Model {index} rendered"


def spread_labels(
    points: list[tuple[float, float]], min_dist: float, iterations: int = 50
) -> list[tuple[float, float]]:
    """Positions for labels at ``points`` (x, y) such that no two are closer than ``min_dist``.

    Labels of peaks farther apart than ``min_dist`` stay on their peaks; closer ones are
    pushed apart symmetrically along the line joining them (sideways when they coincide).

    Parameters
    ----------
    points
        ``(x, y)`` of every peak, in data (pixel) units.
    min_dist
        Smallest distance allowed between two labels, in the same units.
    iterations
        Rounds of pushing.

    Returns
    -------
    list of (float, float)
        The label positions, in the order of ``points``.
    """
    pos = np.array(points, dtype=np.float64).reshape(-1, 2)
    n = len(pos)
    if n < 2 or not min_dist > 0:
        return [tuple(p) for p in pos]
    for _ in range(iterations):
        moved = False
        for i in range(n):
            for j in range(i + 1, n):
                d = pos[j] - pos[i]
                dist = float(np.hypot(*d))
                if dist >= min_dist * 0.999:
                    continue
                direction = d / dist if dist > 1e-9 else np.array([1.0, 0.0])
                push = 0.5 * (min_dist - dist) * direction
                pos[i] -= push
                pos[j] += push
                moved = True
        if not moved:
            break
    return [(float(x), float(y)) for x, y in pos]
