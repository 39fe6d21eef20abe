"""vermilion.io: the stored form of every blend's models.

- `ModelData`, `BlendData`, `SourceData`, `FactorizedComponentData`,
  `CubeComponentData`, `IsolatedSourceData`: the data model (`data`, `components`).
- ``ModelData.read(path, blend_ids=None)``: any supported file, recognised by content
  (our container, Rubin legacy JSON A and B / v29, versioned JSON 1.0.x, ``.scarlet``
  archives); ``ModelData.open(path)``: a lazy mapping; ``model.write(path)``. Formats
  and the dispatch: `registry` (one module per format registers itself there:
  `container`, `rubin_json`, `rubin_archive`; `rubin_legacy` migrates old layouts).
- `ModelDataWriter`: stream blends into a container one by one.
- `blend_to_data` / ``BlendData.to_blend``: to and from `vermilion.core.Blend`.
- `ModelDataError`: the one error type for bad stored data.

Importing this package loads json, zlib and numpy only.
"""

# The format modules register themselves with `registry` when imported here.
from .container import ContainerReader, ModelDataWriter
from .convert import blend_to_data, multiband_data_to_blend, multibandDataToScarlet
from .data import (
    CURRENT_SCHEMA,
    BlendData,
    CubeComponentData,
    FactorizedComponentData,
    IsolatedSourceData,
    ModelData,
    SourceData,
)
from .errors import ModelDataError
from .migration import MigrationRegistry
from .readers import ModelDataReader
from .registry import open_reader
from .rubin_archive import ArchiveReader
from .rubin_json import DictReader

__all__ = [
    "CURRENT_SCHEMA",
    "ArchiveReader",
    "BlendData",
    "ContainerReader",
    "CubeComponentData",
    "DictReader",
    "FactorizedComponentData",
    "IsolatedSourceData",
    "MigrationRegistry",
    "ModelData",
    "ModelDataError",
    "ModelDataReader",
    "ModelDataWriter",
    "SourceData",
    "blend_to_data",
    "multibandDataToScarlet",
    "multiband_data_to_blend",
    "open_reader",
]
