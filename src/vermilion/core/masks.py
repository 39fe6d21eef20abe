"""The mask planes shared by vermilion's exposures, simulations, detection and models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["MASK_PLANES", "mask_bits"]

#: Plane name -> bit of the integer mask plane.
MASK_PLANES: dict[str, int] = {
    # A bad pixel: its value is garbage (e.g. a hot pixel); ignore it.
    "BAD": 1,
    # Saturated in a visit (a simulated coadd keeps the true value plus noise).
    "SAT": 2,
    # No data: image 0, variance inf (weight 0).
    "NO_DATA": 4,
    # Near a NO_DATA region (the data are valid).
    "EDGE": 8,
}


def mask_bits(
    planes: int | str | Iterable[str] | None,
    mask_planes: Mapping[str, int] | None = None,
    strict: bool = True,
) -> int:
    """Bit mask of ``planes``: an int (returned as is), a plane name or names.

    Parameters
    ----------
    planes
        What to select.
    mask_planes
        Plane name to bit (default `MASK_PLANES`).
    strict
        Raise on a name that is not a plane; otherwise ignore it (a Rubin
        ``badMask`` list names planes, e.g. ``CR``, that our exposures lack).

    Raises
    ------
    ValueError
        With ``strict``, naming an unknown plane.

    Returns
    -------
    int
        The OR of the planes' bits.
    """
    if planes is None:
        return 0
    if isinstance(planes, int) or hasattr(planes, "__index__"):
        return int(planes)
    mask_planes = MASK_PLANES if mask_planes is None else mask_planes
    if isinstance(planes, str):
        planes = [planes]
    bits = 0
    for name in planes:
        if name not in mask_planes:
            if strict:
                raise ValueError(f"unknown mask plane {name!r}; known: {sorted(mask_planes)}")
            continue
        bits |= int(mask_planes[name])
    return bits
