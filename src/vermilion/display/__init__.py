"""Pictures of blends: Lupton RGB, scene and source panels, and a browsable patch report.

Importing this package does not import matplotlib: it is loaded when a figure
is first made.

>>> from vermilion.display import AsinhMapping, channels_to_rgb, img_to_rgb, show_scene
>>> norm = AsinhMapping(minimum=0, stretch=0.1, Q=10)
>>> fig = show_scene(blend, norm=norm, show_rendered=True, show_observed=True,
...                  show_residual=True)  # doctest: +SKIP
"""

from .mosaic import scene_mosaic, sources_mosaic
from .pictures import (
    blend_thumbnail,
    render_blend_pictures,
    save_blend_pictures,
    save_figure,
    save_rgb,
)
from .plot import default_norm, show_loss, show_observation, show_scene, show_sources
from .report import normalize_flags, write_report
from .rgb import (
    AsinhMapping,
    LinearMapping,
    Mapping,
    asinh_norm,
    channels_to_rgb,
    img_to_3channel,
    img_to_rgb,
    residual_norm,
)

__all__ = [
    "AsinhMapping",
    "LinearMapping",
    "Mapping",
    "asinh_norm",
    "blend_thumbnail",
    "channels_to_rgb",
    "default_norm",
    "img_to_3channel",
    "img_to_rgb",
    "normalize_flags",
    "render_blend_pictures",
    "residual_norm",
    "save_blend_pictures",
    "save_figure",
    "save_rgb",
    "scene_mosaic",
    "show_loss",
    "show_observation",
    "show_scene",
    "show_sources",
    "sources_mosaic",
    "write_report",
]
