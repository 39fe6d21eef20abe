"""Butler formatters and storage-class delegate for vermilion's types.

The class paths in this module are written into every repository's configuration
(``butler.yaml``) and its datastore records: never move or rename them. Each
formatter is a thin call to its type's own ``read``/``write``.

=====================  ======================  ==========================================
storage class          python type             formatter (file)
=====================  ======================  ==========================================
VermilionExposure      repo.Exposure           `ExposureFormatter` (FITS; ``bbox``)
VermilionCatalog       detect.SourceCatalog    `CatalogFormatter` (FITS with footprints)
VermilionModelData     io.ModelData            `ModelDataFormatter` (container, ``.json``,
                                               ``.scarlet``; ``blend_ids``/``blend_id``)
VermilionTable         astropy Table           `TableFormatter` (FITS, meta as JSON)
VermilionSkyMap        repo.SkyMap             `SkyMapFormatter` (JSON)
=====================  ======================  ==========================================
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from lsst.daf.butler import FormatterV2, StorageClassDelegate
from lsst.resources import ResourcePath

from vermilion.io.limits import open_fits_checked

from .errors import CorruptFileError, RepoError

__all__ = [
    "CatalogFormatter",
    "ExposureDelegate",
    "ExposureFormatter",
    "ModelDataFormatter",
    "SkyMapFormatter",
    "TableFormatter",
]


class _VermilionFormatter(FormatterV2):
    """Shared pieces: local-file reads and errors that name the dataset and data id."""

    can_read_from_local_file = True

    def _what(self) -> str:
        ref = self.dataset_ref
        values = dict(ref.dataId.required)
        order = [k for k in ("skymap", "tract", "patch", "band") if k in values]
        order += [k for k in values if k not in order]
        data_id = ", ".join(f"{k}={values[k]!r}" for k in order)
        return f"{ref.datasetType.name}@{{{data_id}}} (run {ref.run!r})"

    def _reraise(self, exc: Exception) -> None:
        """Re-raise a read error with the dataset type and data id in front of its message."""
        if isinstance(exc, FileNotFoundError):
            raise exc  # the butler handles a missing file itself
        message = f"{self._what()}: {exc}"
        if isinstance(exc, RepoError):
            raise type(exc)(message) from exc
        raise CorruptFileError(message) from exc

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        in_memory_dataset.write(uri.ospath)


class ExposureFormatter(_VermilionFormatter):
    """`Exposure` as FITS; components ``image mask variance psf wcs bbox``; parameter ``bbox``.

    With ``bbox`` only the pixels in the box are read from the file.
    """

    default_extension = ".fits"
    supported_extensions = frozenset({".fits", ".fit"})
    unsupported_parameters = frozenset()  # bbox is handled here

    def read_from_local_file(
        self, path: str, component: str | None = None, expected_size: int = -1
    ) -> Any:
        from .single_band import Exposure

        params = self.file_descriptor.parameters or {}
        unknown = set(params) - {"bbox"}
        if unknown:
            raise ValueError(f"{self._what()}: unknown read parameters {sorted(unknown)}")
        try:
            exposure = Exposure.read(path, bbox=params.get("bbox"), component=component)
        except Exception as exc:
            self._reraise(exc)
        if component is None and exposure.band is None:
            exposure.band = self.dataset_ref.dataId.get("band")
        return exposure


class CatalogFormatter(_VermilionFormatter):
    """`vermilion.detect.SourceCatalog` through its own ``write(path)`` / ``read(path)``."""

    default_extension = ".fits"
    supported_extensions = frozenset({".fits", ".fit"})
    unsupported_parameters = None

    def read_from_local_file(
        self, path: str, component: str | None = None, expected_size: int = -1
    ) -> Any:
        pytype = self.file_descriptor.storageClass.pytype
        try:
            return pytype.read(path)
        except Exception as exc:
            self._reraise(exc)


class ModelDataFormatter(_VermilionFormatter):
    """`vermilion.io.ModelData`: our container (``.vmd``), Rubin ``.json`` or ``.scarlet``.

    The read parameter ``blend_ids`` (or the Rubin name ``blend_id``: one id or a
    list) reads only those blends.
    """

    default_extension = ".vmd"
    supported_extensions = frozenset({".vmd", ".json", ".scarlet"})
    unsupported_parameters = frozenset()

    def read_from_local_file(
        self, path: str, component: str | None = None, expected_size: int = -1
    ) -> Any:
        pytype = self.file_descriptor.storageClass.pytype
        params = dict(self.file_descriptor.parameters or {})
        ids = _blend_ids(params, self._what())
        try:
            return pytype.read(path, blend_ids=ids)
        except Exception as exc:
            self._reraise(exc)


def _blend_ids(params: Mapping[str, Any], what: str) -> list[int] | None:
    unknown = set(params) - {"blend_ids", "blend_id"}
    if unknown:
        raise ValueError(f"{what}: unknown read parameters {sorted(unknown)}")
    if "blend_ids" in params and "blend_id" in params:
        raise ValueError(f"{what}: give blend_ids or blend_id, not both")
    ids = params.get("blend_ids", params.get("blend_id"))
    if ids is None:
        return None
    if isinstance(ids, int) or hasattr(ids, "__index__"):
        return [int(ids)]
    return [int(i) for i in ids]


class TableFormatter(_VermilionFormatter):
    """``astropy.table.Table`` as a FITS binary table; ``table.meta`` kept as JSON."""

    default_extension = ".fits"
    supported_extensions = frozenset({".fits", ".fit"})
    unsupported_parameters = None

    def read_from_local_file(
        self, path: str, component: str | None = None, expected_size: int = -1
    ) -> Any:
        from astropy.table import Table

        try:
            with open_fits_checked(path, CorruptFileError, memmap=False) as hdul:
                table = Table.read(hdul[1], format="fits", character_as_bytes=False)
                meta_json = hdul[1].header.get("VMLNMETA")
            table.meta.clear()
            if meta_json:
                table.meta.update(json.loads(meta_json))
            return table
        except Exception as exc:
            self._reraise(exc)

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        from astropy.io import fits

        table = in_memory_dataset.copy(copy_data=False)
        meta = dict(table.meta)
        table.meta.clear()
        hdu = fits.table_to_hdu(table, character_as_bytes=False)
        if meta:
            hdu.header["VMLNMETA"] = json.dumps(meta, default=_json_default)
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(uri.ospath, overwrite=True)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"table.meta value {obj!r} cannot be stored")


class SkyMapFormatter(_VermilionFormatter):
    """`vermilion.repo.SkyMap` as JSON."""

    default_extension = ".json"
    supported_extensions = frozenset({".json"})
    unsupported_parameters = None

    def read_from_local_file(
        self, path: str, component: str | None = None, expected_size: int = -1
    ) -> Any:
        from .skymap import SkyMap

        try:
            with open(path, "rb") as f:
                return SkyMap.from_json(f.read())
        except Exception as exc:
            self._reraise(exc)

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        with open(uri.ospath, "w") as f:
            f.write(in_memory_dataset.to_json())
            f.flush()
            os.fsync(f.fileno())


class ExposureDelegate(StorageClassDelegate):
    """Components and the ``bbox`` parameter of an in-memory `Exposure`."""

    def getComponent(self, composite: Any, componentName: str) -> Any:
        if componentName not in ("image", "mask", "variance", "psf", "wcs", "bbox"):
            raise AttributeError(f"Exposure has no component {componentName!r}")
        return getattr(composite, componentName)

    def assemble(self, components: dict[str, Any], pytype: type | None = None) -> Any:
        from .single_band import Exposure

        return Exposure(
            components["image"],
            components.get("mask"),
            components.get("variance"),
            components.get("psf"),
            components.get("bbox"),
            components.get("wcs"),
        )

    def handleParameters(
        self, inMemoryDataset: Any, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        if not parameters:
            return inMemoryDataset
        unknown = set(parameters) - {"bbox"}
        if unknown:
            raise ValueError(f"Unknown exposure read parameters {sorted(unknown)}")
        if parameters.get("bbox") is None:
            return inMemoryDataset
        return inMemoryDataset.subset(parameters["bbox"])
