"""Put coadds (user FITS files or simulated arrays) and model files into a repository.

Every function here is idempotent: datasets that already exist in the target run
are left alone (or replaced with ``overwrite=True``), so an interrupted ingest can
simply be run again, and several processes may ingest different patches at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vermilion.core.bbox import Box
from vermilion.core.masks import MASK_PLANES

from .butler import (
    DEFAULT_COADD_RUN,
    EXPOSURE_DATASET,
    MODEL_DATASET,
    TRUTH_DATASET,
    check_repo,
    default_skymap,
    get_skymap,
    repo_bands,
)
from .errors import BBoxError, DataIdError, RepoError
from .exposure_fits import read_psf_file
from .ingest_checks import (
    check_band_card,
    check_exposure_content,
    check_model_file,
    check_same_as_stored,
    check_wcs,
    warn_missing_bands,
)
from .names import check_run_name
from .psf import ImagePsf
from .repository import open_repo
from .single_band import Exposure

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DatasetRef

    from .skymap import PatchInfo

__all__ = ["ingest_arrays", "ingest_coadd", "ingest_model_data"]

_log = logging.getLogger(__name__)


def _writeable(repo: Any) -> Butler:
    if isinstance(repo, str | os.PathLike):
        return open_repo(repo, writeable=True)
    check_repo(repo)
    if not repo.isWriteable():
        raise RepoError("The butler is read-only; open it with writeable=True")
    return repo


def _patch_info(butler: Butler, skymap: str | None, tract: int, patch: Any) -> PatchInfo:
    sky = get_skymap(butler, skymap or default_skymap(butler))
    return sky[tract].patch(patch)


def _check_bands(butler: Butler, bands: Sequence[str]) -> None:
    known = repo_bands(butler)
    missing = [b for b in bands if b not in known]
    if missing:
        raise DataIdError(f"Band(s) {missing} are not in the repository (its bands: {known})")


def _flag_non_finite(exp: Exposure) -> None:
    """Non-finite image or variance pixels: image 0, variance inf, NO_DATA set."""
    bad = ~np.isfinite(exp.image)
    if exp.variance is not None:
        bad |= ~np.isfinite(exp.variance)
    if bad.any():
        no_data = exp.mask_planes.setdefault("NO_DATA", MASK_PLANES["NO_DATA"])
        exp.image[bad] = 0
        if exp.variance is not None:
            exp.variance[bad] = np.inf
        exp.mask[bad] |= no_data


def _put(
    butler: Butler,
    obj: Any,
    dataset_type: str,
    data_id: Mapping[str, Any],
    run: str,
    overwrite: bool,
) -> DatasetRef:
    """Put unless the dataset exists in ``run`` (then keep it, or replace it)."""
    from lsst.daf.butler.registry import ConflictingDefinitionError

    existing = butler.find_dataset(dataset_type, data_id, collections=run)
    if existing is not None:
        if not overwrite:
            check_same_as_stored(butler, existing, obj, dataset_type, data_id, run)
            _log.info("%s %s exists in run %s; kept", dataset_type, dict(data_id), run)
            return existing
        butler.pruneDatasets([existing], disassociate=True, unstore=True, purge=True)
    try:
        return butler.put(obj, dataset_type, data_id, run=run)
    except ConflictingDefinitionError:
        # another process stored the same dataset after our check: keep theirs
        found = butler.find_dataset(dataset_type, data_id, collections=run)
        if found is None:
            raise
        return found


def _as_psf_list(psfs: Any, n: int) -> list[ImagePsf]:
    if isinstance(psfs, ImagePsf):
        raise ValueError("Give one PSF per band, not a single ImagePsf")
    if isinstance(psfs, np.ndarray):
        if psfs.ndim == 2:
            raise ValueError(f"psfs must be one image per band (B, ph, pw), got {psfs.shape}")
        out = [ImagePsf(p) for p in psfs]
    else:
        out = [p if isinstance(p, ImagePsf) else ImagePsf(np.asarray(p)) for p in psfs]
    if len(out) != n:
        raise ValueError(f"{len(out)} PSFs for {n} bands")
    return out


def ingest_arrays(
    repo: Any,
    images: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray | None,
    psfs: Any,
    bands: Sequence[str],
    tract: int,
    patch: int | Sequence[int],
    run: str = DEFAULT_COADD_RUN,
    truth: Any = None,
    *,
    skymap: str | None = None,
    bbox: Box | None = None,
    wcs: Any = None,
    overwrite: bool = False,
) -> dict[str, DatasetRef]:
    """Store a multi-band patch given as arrays (e.g. from `vermilion.sim`).

    Parameters
    ----------
    repo
        Repository path or writeable ``Butler``.
    images, variance
        ``(B, H, W)`` arrays.
    mask
        ``(B, H, W)`` integer mask with the `MASK_PLANES` bits, or None.
    psfs
        ``(B, ph, pw)`` array or one `ImagePsf` (or 2D array) per band.
    bands
        Band names of the first axis.
    tract, patch
        Where the arrays go; ``patch`` is the sequential id or ``(x, y)``.
    run
        Output run (created when missing).
    truth
        Optional truth catalog (``astropy.table.Table``, structured array or dict of
        columns), stored as ``truth_catalog``.
    skymap
        Sky map name (default: the butler's default, or the repository's only one).
    bbox
        Box of the arrays in tract pixels; default the patch's outer box (then the
        arrays must have its shape). It must lie inside the patch's outer box.
    wcs
        ``astropy.wcs.WCS`` of tract pixels; default the tract's.
    overwrite
        Replace datasets that exist in ``run`` (default: keep them).

    Returns
    -------
    dict
        Dataset name or band -> ``DatasetRef`` (bands, plus ``"truth_catalog"``).

    Notes
    -----
    Non-finite image or variance pixels are stored as image 0, variance inf with
    the NO_DATA mask bit set.
    """
    check_run_name(run)
    images = np.asarray(images)
    variance = np.asarray(variance)
    bands = [str(b) for b in bands]
    if images.ndim != 3 or images.shape[0] != len(bands):
        raise ValueError(f"images must be (B, H, W) with {len(bands)} bands, got {images.shape}")
    if variance.shape != images.shape:
        raise ValueError(f"variance has shape {variance.shape}, images {images.shape}")
    if mask is not None and np.shape(mask) != images.shape:
        raise ValueError(f"mask has shape {np.shape(mask)}, images {images.shape}")
    psf_list = _as_psf_list(psfs, len(bands))
    butler = _writeable(repo)
    _check_bands(butler, bands)
    info = _patch_info(butler, skymap, tract, patch)
    box = _target_box(info, images.shape[1:], bbox)
    exposures = []
    for i, band in enumerate(bands):
        exp = Exposure(
            images[i].copy(),
            None if mask is None else mask[i],
            variance[i].copy(),
            psf_list[i],
            box,
            info.wcs if wcs is None else wcs,
            band,
        )
        exposures.append(exp)
    refs = _store(butler, exposures, info, run, overwrite)
    if truth is not None:
        table = _as_table(truth)
        refs[TRUTH_DATASET] = _put(
            butler, table, TRUTH_DATASET, _patch_data_id(info), run, overwrite
        )
    return refs


def _patch_data_id(info: PatchInfo) -> dict[str, Any]:
    return {"skymap": info.tract.skymap.name, "tract": info.tract.id, "patch": info.id}


def _target_box(info: PatchInfo, shape: Sequence[int], bbox: Box | None) -> Box:
    where = f"patch {info.id} of tract {info.tract.id}"
    if bbox is None:
        box = Box(tuple(shape), info.outer_bbox.origin)
        if tuple(shape) != tuple(info.outer_bbox.shape):
            raise BBoxError(
                f"Images of shape {tuple(shape)} do not fill {where}, whose box is "
                f"{info.outer_bbox}; pass bbox= to place them inside it"
            )
        return box
    if tuple(bbox.shape) != tuple(shape):
        raise BBoxError(f"bbox {bbox} does not match the image shape {tuple(shape)}")
    if (bbox & info.outer_bbox) != bbox:
        raise BBoxError(f"bbox {bbox} is not inside {where} ({info.outer_bbox})")
    return bbox


def _store(
    butler: Butler, exposures: Sequence[Exposure], info: PatchInfo, run: str, overwrite: bool
) -> dict[str, DatasetRef]:
    from lsst.daf.butler import CollectionType

    for exp in exposures:
        check_exposure_content(exp)
    butler.collections.register(run, CollectionType.RUN)
    refs = {}
    for exp in exposures:
        _flag_non_finite(exp)
        data_id = {**_patch_data_id(info), "band": exp.band}
        refs[exp.band] = _put(butler, exp, EXPOSURE_DATASET, data_id, run, overwrite)
    return refs


def _as_table(truth: Any):
    from astropy.table import Table

    if isinstance(truth, Table):
        return truth
    return Table(truth)


def ingest_coadd(
    butler_or_path: Any,
    files_by_band: Mapping[str, str | os.PathLike],
    tract: int,
    patch: int | Sequence[int],
    run: str = DEFAULT_COADD_RUN,
    *,
    skymap: str | None = None,
    overwrite: bool = False,
    psfs: Mapping[str, Any] | None = None,
) -> dict[str, DatasetRef]:
    """Store user coadds, one FITS file per band, as ``deepCoadd_calexp``.

    Each file follows the layout of `vermilion.repo.exposure_fits` (HDUs ``IMAGE``,
    ``MASK`` (optional), ``VARIANCE`` (or ``VAR``, or ``IVAR`` inverse variance),
    ``PSF`` as an image HDU); compressed HDUs are fine (they are stored
    uncompressed). The file's origin comes from ``LTV1``/``LTV2`` when present,
    else the patch's first pixel; its box must lie inside the patch's outer box and
    be the same in every band. Without a WCS in the file the tract's is used. Mask
    bits are remapped to `MASK_PLANES` by plane name (other planes get bits from 16).

    A file may also be an ``lsst.afw.image`` Exposure or MaskedImage (HDUs
    ``IMAGE``, ``MASK``, ``VARIANCE``; see `vermilion.repo.afw_exposure`). Its PSF
    (in the afw archive, e.g. a coadd's ``CoaddPsf``) is not evaluated: give it in
    ``psfs``.

    Parameters
    ----------
    psfs
        Band -> PSF, replacing the file's: an `ImagePsf`, a ``(ph, pw)`` image, or
        the path of a FITS file holding the PSF image (`read_psf_file`). Required
        for afw files.

    Returns
    -------
    dict
        Band -> ``DatasetRef``.

    Raises
    ------
    PsfMissingError
        A band's file carries no PSF vermilion can read and ``psfs`` has none.
    """
    check_run_name(run)
    if not files_by_band:
        raise ValueError("No files to ingest")
    butler = _writeable(butler_or_path)
    bands = [str(b) for b in files_by_band]
    _check_bands(butler, bands)
    info = _patch_info(butler, skymap, tract, patch)
    exposures = []
    for band, path in files_by_band.items():
        check_band_card(path, str(band))
        psf = (psfs or {}).get(band)
        if isinstance(psf, str | os.PathLike):
            psf = read_psf_file(psf)
        exp = Exposure.from_fits(path, band=str(band), origin=info.outer_bbox.origin, psf=psf)
        if exp.psf is None:
            raise RepoError(f"{os.fspath(path)}: no PSF")
        # before the mask planes are remapped
        check_exposure_content(exp, f"{os.fspath(path)} (band {band!r})")
        where = f"{os.fspath(path)} (band {band!r})"
        if (exp.bbox & info.outer_bbox) != exp.bbox:
            raise BBoxError(
                f"{where} covers {exp.bbox}, not inside patch {info.id} of tract "
                f"{info.tract.id} ({info.outer_bbox})"
            )
        if exposures and exp.bbox != exposures[0].bbox:
            raise BBoxError(f"{where} covers {exp.bbox}; the other bands cover {exposures[0].bbox}")
        if exp.variance is None:
            raise RepoError(f"{where}: no variance")
        if exp.wcs is None:
            exp.wcs = info.wcs
        else:
            check_wcs(exp, info, where)
        exp.with_standard_mask_planes()
        exp.band = str(band)
        exposures.append(exp)
    refs = _store(butler, exposures, info, run, overwrite)
    warn_missing_bands(butler, info, run)
    return refs


def ingest_model_data(
    butler_or_path: Any,
    path: str | os.PathLike,
    tract: int,
    patch: int | Sequence[int],
    run: str,
    *,
    skymap: str | None = None,
    transfer: str = "copy",
    dataset_type: str = MODEL_DATASET,
) -> DatasetRef:
    """Ingest a model-data file as it is: our container (``.vmd``), Rubin ``.json`` or ``.scarlet``.

    The file is copied (``transfer="copy"``; also ``"link"``, ``"move"``, ...) into
    the repository and read with `vermilion.io.ModelData` on ``get``.
    """
    from lsst.daf.butler import CollectionType, DatasetRef, FileDataset

    from .formatters import ModelDataFormatter

    check_run_name(run)
    # Absolute: the butler would resolve a relative path against the repository root.
    src = os.path.abspath(os.fspath(path))
    ext = os.path.splitext(src)[1].lower()
    if ext not in ModelDataFormatter.supported_extensions:
        raise ValueError(
            f"{src}: model data files must end in one of "
            f"{sorted(ModelDataFormatter.supported_extensions)}"
        )
    if not os.path.isfile(src):
        raise FileNotFoundError(src)
    check_model_file(src)
    butler = _writeable(butler_or_path)
    info = _patch_info(butler, skymap, tract, patch)
    butler.collections.register(run, CollectionType.RUN)
    dt = butler.get_dataset_type(dataset_type)
    data_id = butler.registry.expandDataId(_patch_data_id(info))
    ref = DatasetRef(dt, data_id, run=run)
    butler.ingest(
        FileDataset(path=src, refs=[ref], formatter=ModelDataFormatter), transfer=transfer
    )
    return ref
