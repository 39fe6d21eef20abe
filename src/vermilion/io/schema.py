"""Versions of the stored data model and the migrations between them.

One `MigrationRegistry` per kind of object: the model (patch level), the blend, and
the leaves (source, component, isolated source) whose versions are only checked.
Reading any Rubin layout migrates it here to the current versioned form first.
"""

from __future__ import annotations

from .data import CURRENT_SCHEMA
from .migration import PRE_SCHEMA, MigrationRegistry
from .rubin_legacy import blend_pre_schema, model_pre_schema

__all__ = [
    "BLEND_MIGRATIONS",
    "COMPONENT_VERSIONS",
    "ISOLATED_VERSIONS",
    "MODEL_MIGRATIONS",
    "SOURCE_VERSIONS",
]

MODEL_MIGRATIONS = MigrationRegistry("model", CURRENT_SCHEMA)
BLEND_MIGRATIONS = MigrationRegistry("blend", "1.0.0")
# Leaves with a version field but no migrations yet: only the version check applies.
SOURCE_VERSIONS = MigrationRegistry("source", "1.0.0")
COMPONENT_VERSIONS = MigrationRegistry("component", "1.0.0")
ISOLATED_VERSIONS = MigrationRegistry("isolated source", "1.0.0")

MODEL_MIGRATIONS.register(PRE_SCHEMA, "1.0.0")(model_pre_schema)
BLEND_MIGRATIONS.register(PRE_SCHEMA, "1.0.0")(blend_pre_schema)


@MODEL_MIGRATIONS.register("1.0.0", "1.0.1")
def _model_1_0_0(d: dict) -> dict:
    """1.0.1 only adds ``footprint: null`` to the metadata."""
    meta = d.get("metadata")
    if meta is None:
        d["metadata"] = meta = {}
    if isinstance(meta, dict):
        meta.setdefault("footprint", None)
    return d
