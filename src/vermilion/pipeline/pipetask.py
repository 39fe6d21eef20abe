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
``numProcesses`` (processes for the blends of one quantum), ``bands`` (the bands
every patch must have) and the dataset type names of the connections (``-c
deblend:connections.coadds=...``).

Bands: the coadd input is one connection over every band of the patch, and the
butler hands a quantum only the coadds that exist. With ``-c deblend:bands=g,r,i``
a patch without one of them is refused, loudly: the graph builder raises
`MissingBandsError` naming every such patch, its bands and the missing ones (and
the quantum raises it again if a coadd file vanished after the graph was built),
as ``vermilion deblend --bands gri`` refuses it; coadds of other bands are left
out of the quanta. With ``bands`` unset (the default) each patch is deblended in
the bands its quantum brings, and the graph builder warns about every patch that
brings fewer bands than others of the same graph, naming the bands it will use.

This module needs ``lsst-pipe-base`` (``pip install "vermilion[rubin]"``); nothing
else in vermilion imports it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
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
    "MissingBandsError",
    "deblend_config_fields",
    "missing_bands_message",
]

#: Storage classes vermilion registers for the datasets (`vermilion.repo.create_repo`).
EXPOSURE_STORAGE_CLASS = "VermilionExposure"
CATALOG_STORAGE_CLASS = "VermilionCatalog"
MODEL_STORAGE_CLASS = "VermilionModelData"

_PATCH = ("skymap", "tract", "patch")


class MissingBandsError(LookupError):
    """A patch lacks coadds of some of the bands the config asks for (``bands``)."""


def missing_bands_message(
    data_id: Any, asked: Sequence[str], have: Iterable[str], dataset: str, label: str
) -> str:
    """What a patch lacks: the patch, the bands asked for, the bands it has, the missing ones.

    Parameters
    ----------
    data_id
        The quantum's data ID (``skymap``, ``tract``, ``patch``).
    asked
        The bands of the config (``bands``).
    have
        The bands whose coadds the quantum brings.
    dataset
        The coadd dataset type name.
    label
        The task's label in the pipeline (``deblend``), for the config option.
    """
    have = sort_bands(have)
    missing = [b for b in asked if b not in have]
    where = f"skymap {data_id['skymap']!r} tract {data_id['tract']} patch {data_id['patch']}"
    if not have:
        return f"{where} has no {dataset} at all, not in {_comma(missing)} asked for"
    return (
        f"{where} has {dataset} in band(s) {_comma(have)} only: missing {_comma(missing)} "
        f"of the bands asked for ({label}:bands={_comma(asked)})"
    )


def _comma(bands: Iterable[str]) -> str:
    return ",".join(bands)


def _missing_bands_error(lines: Sequence[str], asked: Sequence[str], label: str) -> str:
    return (
        "\n  ".join([f"{len(lines)} patch(es) lack coadds of bands asked for:", *lines])
        + f"\nIngest the missing coadds, leave these patches out of the data query (-d), "
        f"or deblend the bands they have (e.g. -c {label}:bands=...); -c {label}:bands= "
        f"(empty) deblends each patch in the bands it has."
    )


class DeblendPipelineConnections(PipelineTaskConnections, dimensions=_PATCH):
    """Inputs and outputs of one patch; each name can be changed in the config.

    With ``config.bands`` set, `adjust_all_quanta` refuses the graph when a patch lacks
    one of them, and `adjustQuantum` keeps only their coadds (refusing a quantum whose
    coadd of one of them is gone at execution); unset, `adjust_all_quanta` warns about
    the patches that bring fewer bands than others.
    """

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

    def adjust_all_quanta(self, adjuster: Any) -> None:
        """At graph build: refuse patches missing bands asked for; else warn on short patches."""
        super().adjust_all_quanta(adjuster)
        label = adjuster.task_label
        dataset = self.coadds.name
        bands_of = {
            data_id: sort_bands(str(d["band"]) for d in adjuster.get_inputs(data_id)["coadds"])
            for data_id in adjuster.iter_data_ids()
        }
        asked = list(self.config.bands)
        if asked:
            lines = [
                missing_bands_message(data_id, asked, have, dataset, label)
                for data_id, have in bands_of.items()
                if any(b not in have for b in asked)
            ]
            if lines:
                raise MissingBandsError(_missing_bands_error(lines, asked, label))
            return
        every = sort_bands(b for have in bands_of.values() for b in have)
        for data_id, have in bands_of.items():
            if have and len(have) < len(every):
                logging.getLogger(f"lsst.{label}").warning(
                    "%s: skymap %r tract %s patch %s has %s in band(s) %s only, not %s as "
                    "other patches of this graph: it is deblended in %s (%s:bands is not "
                    "set; set it, e.g. -c %s:bands=%s, to refuse patches without them)",
                    label, data_id["skymap"], data_id["tract"], data_id["patch"], dataset,
                    _comma(have), _comma(b for b in every if b not in have), _comma(have),
                    label, label, _comma(every),
                )  # fmt: skip

    def adjustQuantum(self, inputs: dict, outputs: dict, label: str, data_id: Any) -> tuple:
        """Keep the coadds of ``config.bands`` only; raise `MissingBandsError` if one lacks.

        Runs at graph build and again at execution when an input is gone by then.
        """
        asked = list(self.config.bands)
        if not asked:
            return super().adjustQuantum(inputs, outputs, label, data_id)
        connection, refs = inputs["coadds"]
        have = {str(ref.dataId["band"]) for ref in refs}
        if any(b not in have for b in asked):
            line = missing_bands_message(data_id, asked, have, connection.name, label)
            raise MissingBandsError(_missing_bands_error([line], asked, label))
        adjusted = {"coadds": (connection, [r for r in refs if str(r.dataId["band"]) in asked])}
        inputs.update(adjusted)
        super().adjustQuantum(inputs, outputs, label, data_id)
        return adjusted, {}


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
    """Config of `DeblendPipelineTask`: every `DeblendConfig` field, ``numProcesses``, ``bands``."""

    bands = ListField(
        dtype=str,
        default=[],
        doc="Bands to deblend, in this order (e.g. -c deblend:bands=g,r,i). A patch without a "
        "coadd in one of them fails the graph build (MissingBandsError naming the patch, "
        "the bands it has and the missing ones); coadds of other bands are not read. "
        "Empty (default): each patch in the bands it has, in wavelength order; the graph "
        "builder warns about patches with fewer bands than others.",
    )

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
        if len(set(self.bands)) != len(self.bands) or not all(self.bands):
            raise ValueError(f"bands must be distinct band names, got {list(self.bands)}")


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
        data_id = butlerQC.quantum.dataId
        asked = list(self.config.bands)
        if asked and any(b not in refs for b in asked):
            name = self.config.connections.coadds
            line = missing_bands_message(data_id, asked, refs, name, self.getName())
            raise MissingBandsError(_missing_bands_error([line], asked, self.getName()))
        bands = asked or sort_bands(refs)
        self.log.info(
            "Deblending tract %s patch %s in band(s) %s%s", data_id["tract"], data_id["patch"],
            _comma(bands), "" if asked else " (every band of the quantum: bands is not set)",
        )  # fmt: skip
        coadds = [butlerQC.get(refs[band]) for band in bands]
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
