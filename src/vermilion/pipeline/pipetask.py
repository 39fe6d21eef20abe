"""`DeblendPipelineTask`: the deblender as a Rubin ``PipelineTask``, for ``pipetask`` and BPS.

Run it with the pipeline shipped in the package::

    pipetask run -b REPO -p resource://vermilion/pipelines/deblend.yaml \\
        -i vermilion/coadd -o u/NAME/deblend \\
        -d "skymap='S' AND tract=0 AND patch=0" -j 2 --register-dataset-types

One quantum is one patch: it reads ``deepCoadd_calexp`` of every band of the patch
and writes ``deepCoadd_deblendedCatalog`` and ``deepCoadd_scarletModelData``, through
the same `detect_and_deblend` (detection, then `DeblendTask`) as ``vermilion
deblend``, so both write the same catalog and models for the same inputs and config.

`DeblendPipelineConfig` carries every field of `DeblendConfig` under the same name,
with the same default and doc, generated from `DeblendConfig` (``-c
deblend:maxIter=100`` works as ``vermilion deblend -c maxIter=100``), plus
``numProcesses`` (processes for the blends of one quantum) and the dataset type
names of the connections (``-c deblend:connections.coadds=...``).

This module needs ``lsst-pipe-base`` (``pip install "vermilion[rubin]"``); nothing
else in vermilion imports it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

try:
    import lsst.pipe.base.connectionTypes as cT
    from lsst.pex.config import Field, ListField
    from lsst.pipe.base import (
        PipelineTask,
        PipelineTaskConfig,
        PipelineTaskConnections,
        Struct,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "vermilion.pipeline.pipetask needs the Rubin pipeline packages (lsst-pipe-base, "
        f'lsst-ctrl-mpexec): pip install "vermilion[rubin]" ({exc})'
    ) from exc

from vermilion.repo.butler import CATALOG_DATASET, EXPOSURE_DATASET, MODEL_DATASET

from .arrays import detect_and_deblend
from .config import DeblendConfig
from .patches import sort_bands

__all__ = [
    "DeblendPipelineConfig",
    "DeblendPipelineConnections",
    "DeblendPipelineTask",
    "deblend_config_fields",
]

#: Storage classes vermilion registers for the datasets (`vermilion.repo.create_repo`).
EXPOSURE_STORAGE_CLASS = "VermilionExposure"
CATALOG_STORAGE_CLASS = "VermilionCatalog"
MODEL_STORAGE_CLASS = "VermilionModelData"

_PATCH = ("skymap", "tract", "patch")


class DeblendPipelineConnections(PipelineTaskConnections, dimensions=_PATCH):
    """Inputs and outputs of one patch; each name can be changed in the config."""

    coadds = cT.Input(
        doc="Coadd exposures of every band of the patch.",
        name=EXPOSURE_DATASET,
        storageClass=EXPOSURE_STORAGE_CLASS,
        dimensions=(*_PATCH, "band"),
        multiple=True,
    )
    deblendedCatalog = cT.Output(
        doc="Parents and children of the patch, with footprints and deblender columns.",
        name=CATALOG_DATASET,
        storageClass=CATALOG_STORAGE_CLASS,
        dimensions=_PATCH,
    )
    scarletModelData = cT.Output(
        doc="The models of every blend of the patch (vermilion.io.ModelData).",
        name=MODEL_DATASET,
        storageClass=MODEL_STORAGE_CLASS,
        dimensions=_PATCH,
    )


# ---- the config, generated from DeblendConfig ------------------------------------------------

_FIELD_LINE = re.compile(r"^(?P<indent>\s*)(?P<name>\w+) : .*$")


def _field_docs() -> dict[str, str]:
    """Field name -> its description in `DeblendConfig`'s docstring (numpy style)."""
    lines = (DeblendConfig.__doc__ or "").splitlines()
    names = {f.name for f in dataclasses.fields(DeblendConfig)}
    docs: dict[str, str] = {}
    i = 0
    while i < len(lines):
        match = _FIELD_LINE.match(lines[i])
        i += 1
        if not match or match["name"] not in names:
            continue
        indent = len(match["indent"])
        body = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            if lines[i].strip():
                body.append(lines[i].strip())
            i += 1
        docs[match["name"]] = " ".join(body)
    return docs


def deblend_config_fields() -> dict[str, Field]:
    """A ``lsst.pex.config`` field for every `DeblendConfig` field: same name, default, doc.

    Raises
    ------
    TypeError
        A field has no doc in `DeblendConfig`'s docstring, or a type this does not map.
    """
    docs = _field_docs()
    out: dict[str, Field] = {}
    for f in dataclasses.fields(DeblendConfig):
        doc = docs.get(f.name)
        if not doc:
            raise TypeError(f"DeblendConfig.{f.name} has no description in its docstring")
        kind = str(f.type)
        if kind.startswith("tuple"):
            out[f.name] = ListField(dtype=str, default=list(f.default), doc=doc)
        elif kind in ("int", "float", "bool", "str"):
            dtype = {"int": int, "float": float, "bool": bool, "str": str}[kind]
            out[f.name] = Field(dtype=dtype, default=f.default, doc=doc)
        else:
            raise TypeError(f"DeblendConfig.{f.name}: no pex_config field for type {kind}")
    return out


class DeblendPipelineConfig(PipelineTaskConfig, pipelineConnections=DeblendPipelineConnections):
    """Config of `DeblendPipelineTask`: every `DeblendConfig` field, and ``numProcesses``."""

    numProcesses = Field(
        dtype=int,
        default=1,
        doc="Processes for the blends of one quantum (patch); 0: every core. pipetask's -j "
        "runs that many quanta at once, each with numProcesses processes.",
    )

    def deblend_config(self) -> DeblendConfig:
        """The `DeblendConfig` of these settings (checked: a bad value raises ValueError)."""
        return DeblendConfig(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(DeblendConfig)}
        )

    def validate(self) -> None:
        super().validate()
        if self.numProcesses < 0:
            raise ValueError(f"numProcesses must be >= 0 (0: every core), got {self.numProcesses}")
        self.deblend_config()


for _name, _field in deblend_config_fields().items():
    setattr(DeblendPipelineConfig, _name, _field)
del _name, _field


# ---- the task ---------------------------------------------------------------------------------


class DeblendPipelineTask(PipelineTask):
    """Detect and deblend one patch: `detect_and_deblend`, as ``vermilion deblend`` runs it."""

    ConfigClass = DeblendPipelineConfig
    _DefaultName = "deblend"

    def runQuantum(self, butlerQC: Any, inputRefs: Any, outputRefs: Any) -> None:
        refs = {str(ref.dataId["band"]): ref for ref in inputRefs.coadds}
        bands = sort_bands(refs)
        coadds = [butlerQC.get(refs[band]) for band in bands]
        data_id = butlerQC.quantum.dataId
        outputs = self.run(
            coadds,
            bands,
            tract=int(data_id["tract"]),
            patch=int(data_id["patch"]),
            skymap=str(data_id["skymap"]),
        )
        butlerQC.put(outputs, outputRefs)

    def run(
        self, coadds: list[Any], bands: list[str], *, tract: int, patch: int, skymap: str
    ) -> Struct:
        """Deblend the patch whose exposures (one per band, in ``bands`` order) are given.

        Returns
        -------
        lsst.pipe.base.Struct
            ``deblendedCatalog`` and ``scarletModelData``.
        """
        from vermilion.repo import MultibandExposure

        mexp = MultibandExposure.from_exposures(bands, coadds)
        workers = None if self.config.numProcesses == 0 else self.config.numProcesses
        _, catalog, model_data, _ = detect_and_deblend(
            mexp,
            self.config.deblend_config(),
            tract=tract,
            patch=patch,
            skymap=skymap,
            workers=workers,
        )
        return Struct(deblendedCatalog=catalog, scarletModelData=model_data)
