"""The stored form of a patch's models: `ModelData` and `BlendData` (the data classes only).

Coordinates are ``(y, x)`` in the parent image's pixels. Rubin's x-first views
(``xy0``, ``extent``) are read-only properties. Arrays are float32.

A `BlendData` read from a file inherits the patch-level ``bands``, observed ``psf``
and ``model_psf`` of its `ModelData` unless it stores its own; writers store a
blend's own value only where it differs from the patch's.

The leaves (components, sources, isolated sources) live in `vermilion.io.components`
and are re-exported here. Files are read and written through `vermilion.io.registry`
(the formats register themselves there); ``vermilion.io.data.ModelData`` is the class
path written in repositories' registries and stays here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vermilion.core.notebook import picture_png

from . import registry
from ._fields import NOWHERE, Where, as_bands, user_array
from .components import (
    ComponentData,
    CubeComponentData,
    FactorizedComponentData,
    IsolatedSourceData,
    SourceData,
    argmax_peak,
    arrays_equal,
    metadata_equal,
    normalize_model_psf,
)
from .errors import ModelDataError
from .rebuild import data_to_blend

if TYPE_CHECKING:
    from vermilion.core.bbox import Box

__all__ = [
    "CURRENT_SCHEMA",
    "BlendData",
    "ComponentData",
    "CubeComponentData",
    "FactorizedComponentData",
    "IsolatedSourceData",
    "ModelData",
    "SourceData",
    "argmax_peak",
    "normalize_model_psf",
]

#: Schema version of the data model (the Rubin versioned-JSON schema we write).
CURRENT_SCHEMA = "1.0.1"


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
    children
        For a hierarchical blend (Rubin's ``blend_type`` "hierarchical"): its child
        blends ``{blend_id: BlendData}``, nested as stored; ``sources`` then holds
        all their sources. None for a plain blend.
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
    children: dict[int, BlendData] | None = None

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
        if self.children is not None:
            if not isinstance(self.children, dict):
                raise where.error("children must be a dict {blend_id: BlendData}", "children")
            for cid, child in self.children.items():
                if not isinstance(child, BlendData):
                    raise where.error(f"expected BlendData, got {type(child).__name__}", "children")
                child.validate(cid, patch_bands if self.bands is None else self.bands)

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
        return data_to_blend(self, observation, model_psf=model_psf, psf=psf, bands=bands)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BlendData):
            return False
        return (
            tuple(self.origin) == tuple(other.origin)
            and tuple(self.shape) == tuple(other.shape)
            and self.psf_center == other.psf_center
            and self.bands == other.bands
            and arrays_equal(self.psf, other.psf)
            and arrays_equal(self.model_psf, other.model_psf)
            and arrays_equal(self.footprint, other.footprint)
            and metadata_equal(self.metadata, other.metadata)
            and self.sources == other.sources
            and self.children == other.children
        )

    def __repr__(self) -> str:
        return (
            f"BlendData(origin={self.origin}, shape={self.shape}, "
            f"n_sources={len(self.sources)}, bands={self.bands})"
        )

    def _repr_png_(self) -> bytes | None:
        """A picture in Jupyter (drawn by `vermilion.display` when asked, see
        `vermilion.core.notebook`)."""
        return picture_png(self)


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
        if blend.psf is not None and not arrays_equal(blend.psf, self.observed_psf):
            out["psf"] = blend.psf
        if blend.model_psf is not None and not arrays_equal(blend.model_psf, self.psf):
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
            1.0.x) or a Rubin ``.scarlet`` archive (see `vermilion.io.registry`).
        blend_ids
            Read only these blends (and isolated sources with these ids); through the
            index for our container, one member each for an archive.
        on_error
            ``"raise"`` (default) or ``"skip"``: leave out blends that fail to read
            (e.g. a failed checksum) and record their errors in ``model.errors``.
        """
        with registry.open_reader(path) as reader:
            return reader.read(blend_ids, on_error=on_error)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Mapping[int, BlendData]:
        """A lazy read-only mapping ``{blend_id: BlendData}`` over a model file.

        A `vermilion.io.ModelDataReader` (use it as a context manager).
        """
        return registry.open_reader(path)

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
            ``"container"``, ``"json"`` or ``"scarlet"`` (any registered format); by
            default from the extension (``.json`` and ``.scarlet``; anything else is
            our container).
        compression_level, codec
            Compression of the container (see `ModelDataWriter`).
        """
        registry.write_model(self, path, format, compression_level=compression_level, codec=codec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelData):
            return False
        if (
            self.bands != other.bands
            or not arrays_equal(self.psf, other.psf)
            or not arrays_equal(self.observed_psf, other.observed_psf)
            or not metadata_equal(self.metadata, other.metadata)
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
            blend.children,
        )

    def __repr__(self) -> str:
        return (
            f"ModelData(bands={self.bands}, n_blends={len(self.blends)}, "
            f"n_isolated={len(self.isolated)}, version={self.version!r})"
        )

    def _repr_png_(self) -> bytes | None:
        """A picture in Jupyter (drawn by `vermilion.display` when asked, see
        `vermilion.core.notebook`)."""
        return picture_png(self)


#: Rubin's name of `ModelData` (``lsst.scarlet.lite.io.ScarletModelData``).
ScarletModelData = ModelData
