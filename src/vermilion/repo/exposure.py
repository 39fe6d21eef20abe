"""Exposures: the classes of one band and of several bands, under their first dotted paths.

Repositories record ``vermilion.repo.exposure.Exposure`` and
``vermilion.repo.exposure.ImagePsf`` as storage-class types, so these names stay
importable here. Each lives in its own module: `ImagePsf` in
`vermilion.repo.psf`, `Exposure` in `vermilion.repo.single_band`,
`MultibandExposure` in `vermilion.repo.multiband`; the FITS layouts in
`vermilion.repo.exposure_fits` and `vermilion.repo.afw_exposure`.
"""

from __future__ import annotations

from .boxes import as_box
from .exposure_fits import EXPOSURE_FORMAT_VERSION
from .multiband import MultibandExposure
from .psf import ImagePsf
from .single_band import Exposure

__all__ = [
    "EXPOSURE_FORMAT_VERSION",
    "Exposure",
    "ImagePsf",
    "MultibandExposure",
    "as_box",
]
