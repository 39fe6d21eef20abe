"""`DeblendConfig`: every setting of the patch deblender, with the Rubin deblender's defaults.

A config is a plain dataclass. It is loaded from a YAML or TOML file
(`DeblendConfig.from_file`), changed field by field (`DeblendConfig.override`,
`DeblendConfig.from_args` for ``key=value`` strings from a command line) and
recorded with the outputs (`DeblendConfig.to_dict`: in the model data's metadata
and in the catalog's ``meta`` under ``"deblend_config"``).

Field names keep the Rubin spelling (``maxIter``, ``relativeError`` ...) so that
configs of ``lsst.meas.extensions.scarlet.ScarletDeblendConfig`` carry over.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vermilion.core.masks import MASK_PLANES
from vermilion.core.operators import DEFAULT_MONOTONIC_SLACK
from vermilion.io.metadata import RECORDED_CONFIG_KEY

__all__ = [
    "BACKGROUND_MODES",
    "CONFIG_KEY",
    "KNOWN_MASK_PLANES",
    "DeblendConfig",
    "ScarletDeblendConfig",
]

#: Key under which the config is recorded in model-data metadata and catalog meta (defined
#: by io, whose rebuild reads the recorded settings back).
CONFIG_KEY = RECORDED_CONFIG_KEY

_SOURCE_MODELS = ("single", "double", "compact")
#: Values of `DeblendConfig.background` (see `vermilion.pipeline.background`).
BACKGROUND_MODES = ("auto", "subtract", "none", "fit")
#: Mask planes ``badMask`` may name: ours, and the standard planes of Rubin's exposures
#: (planes an exposure does not define select no pixel).
KNOWN_MASK_PLANES = frozenset(MASK_PLANES) | frozenset(
    (
        "BAD", "CLIPPED", "CR", "CROSSTALK", "DETECTED", "DETECTED_NEGATIVE", "EDGE",
        "INEXACT_PSF", "INJECTED", "INJECTED_TEMPLATE", "INTRP", "ITL_DIP", "NOT_DEBLENDED",
        "NO_DATA", "REJECTED", "SAT", "SAT_TEMPLATE", "SENSOR_EDGE", "SPIKE", "STREAK",
        "SUSPECT", "UNMASKEDNAN", "VIGNETTED", "BRIGHT_OBJECT", "INVALID",
    )
)  # fmt: skip
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONVOLUTIONS = ("fft", "real")
_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


class _class_or_instance_method:
    """A method bound to the instance when called on one, else to the class."""

    def __init__(self, func) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj, cls):
        return functools.partial(self.func, cls if obj is None else obj)


@dataclass
class DeblendConfig:
    """Settings of `vermilion.pipeline.DeblendTask` (Rubin ``ScarletDeblendConfig`` names).

    Fit
    ---
    maxIter : int, default 300
        Maximum number of iterations of a blend's fit.
    minIter : int, default 15
        Minimum number of iterations before the convergence test applies.
    relativeError : float, default 1e-2
        Stop when ``|logL_k - logL_(k-1)| < relativeError * |logL_k|``.
    maxProxIter : int, default 1
        Times the proximal operators are applied per step.
    backgroundThresh : float, default 0.25
        Morphology pixels whose model is below ``backgroundThresh * noise_rms`` in
        every band are set to 0 (sparsity).
    resizeFrequency : int, default 10
        Resize the component boxes every this many iterations (0: never). Not a
        Rubin field (its engine resizes every 10 iterations).
    monotonicSlack : float, default 0.5
        Strictness of the monotonicity constraint, from 0 (the Rubin engine's
        weighted monotonicity) to 1 (no pixel brighter than its brightest neighbour
        nearer the peak); see `vermilion.core.prox_monotonic`. Not a Rubin field.

    Model
    -----
    modelPsfSigma : float, default 0.8
        Sigma (pixels) of the circular Gaussian model-space PSF.
    modelPsfSize : int, default 11
        Width of the model PSF image (odd).
    convolutionType : {"fft", "real"}, default "fft"
        How models are convolved to the observed PSFs during the fit.

    Initialization
    --------------
    sourceModel : {"single", "double", "compact"}, default "double"
        "single": one component per source; "double": bright sources get a bulge
        and a disk (``init_all_sources(max_components=2)``); "compact": every
        source starts as the model PSF (one component).
    minSNR : float, default 10
        Peaks below this detection S/N start as compact sources (Rubin: 50; 10 measured
        more accurate, see `vermilion.core.initialization.DEFAULT_MIN_SNR`).
    morphThresh : float, default 1
        Initial morphologies are cut where the detection image falls below this S/N.
    setSpectra : bool, default True
        Fit all spectra at once by least squares after initialization ...
    maxSpectrumCutoff : int, default 1_000_000
        ... unless ``peaks * footprint area`` exceeds this (memory and time of the
        spectrum fit).

    Data
    ----
    useWeights : bool, default True
        Inverse-variance weights; False gives every valid pixel weight 1.
    badMask : tuple of str, default ("BAD", "CR", "NO_DATA", "SAT", "SUSPECT", "EDGE")
        Mask planes whose pixels get zero weight (planes the exposure does not
        define are ignored).
    background : {"auto", "subtract", "none", "fit"}, default "auto"
        The sky left in the coadds (`vermilion.pipeline.background`), estimated per
        band as detection does (`vermilion.detect.estimate_background`): "auto"
        subtracts a band's background before fitting when its largest absolute level
        exceeds ``backgroundSignificance`` times the band's median pixel noise (a
        background-subtracted coadd is left as it is, bit for bit); "subtract"
        always subtracts it; "none" never; "fit" fits it in every blend with the
        sources, a constant level per band over the blend box
        (`vermilion.core.BackgroundComponent`) constrained by the valid pixels
        around them (off every parent footprint, in the blend box grown by
        ``backgroundMargin``; the sources' light spilling there is modelled),
        recorded on the parent as ``deblend_backgroundLevel_<band>`` (and its error
        ``deblend_backgroundLevelErr_<band>``) and taken out of the image shared
        between the children. What was done is recorded in the catalog's
        ``meta["deblend_background"]``. Not a Rubin field (Rubin's coadds are
        background-subtracted).
    backgroundSignificance : float, default 0.5
        Threshold of ``background="auto"``, in units of the median pixel noise.
        Background-subtracted coadds estimate 0.01 to 0.07 (`vermilion.sim` patches)
        and 0.15 to 0.39 (the HSC cutout of `vermilion.data.hsc_blend`, 58 x 48
        pixels, where the sky is the wings of its galaxies); sky left in a coadd is
        usually many times the noise.
    backgroundMargin : int, default 40
        With ``background="fit"``: pixels around the blend box whose sky constrains
        its level. Measured on a 160 x 160 gri simulation with +20 nJy: children's
        fluxes within 1.3% of the background-free ones at 30 or 40 px, up to 10% at
        20 px and 23 to 40% at 0 (a level fitted within its box alone is too noisy:
        a level off by 0.05 already moves crowded children's fluxes by 2%).
    backgroundCell : int, default 128
        Mesh cell of the background estimate in pixels (as
        `vermilion.detect.DetectionConfig.background_cell`).

    Which parents are deblended
    ---------------------------
    processSingles : bool, default True
        Also model isolated parents (one peak). When False they get one child
        whose model is the image inside the footprint (stored as an isolated
        source). Rubin's default is False; ours is True so that every source has
        a model.
    maxNumberOfPeaks : int, default 200
        Parents with more peaks are skipped (``deblend_tooManyPeaks``); 0: no limit.
    maxFootprintArea : int, default 100_000
        Parents with a larger footprint (pixels) are skipped
        (``deblend_parentTooBig``); 0: no limit.
    maxAreaTimesPeaks : float, default 1e7
        Parents whose area times number of peaks exceeds this are skipped
        (``deblend_parentTooBig``); 0: no limit.
    maxFootprintSize : int, default 0
        Parents whose footprint box is longer than this on a side are skipped
        (``deblend_parentTooBig``); 0: no limit.
    pseudoColumns : tuple of str, default ("merge_peak_sky", "sky_source")
        Boolean catalog columns marking pseudo-sources (sky objects): parents with
        one of them set are never deblended (``deblend_skipped``).

    Failures
    --------
    catchFailures : bool, default True
        A blend whose fit fails (an exception, a non-finite likelihood) is flagged
        ``deblend_failed`` with the reason and the patch goes on; False raises.
    """

    maxIter: int = 300
    minIter: int = 15
    relativeError: float = 1e-2
    morphThresh: float = 1.0
    backgroundThresh: float = 0.25
    maxProxIter: int = 1
    resizeFrequency: int = 10
    monotonicSlack: float = DEFAULT_MONOTONIC_SLACK
    modelPsfSigma: float = 0.8
    modelPsfSize: int = 11
    minSNR: float = 10.0
    useWeights: bool = True
    badMask: tuple[str, ...] = ("BAD", "CR", "NO_DATA", "SAT", "SUSPECT", "EDGE")
    background: str = "auto"
    backgroundSignificance: float = 0.5
    backgroundCell: int = 128
    backgroundMargin: int = 40
    convolutionType: str = "fft"
    sourceModel: str = "double"
    setSpectra: bool = True
    maxSpectrumCutoff: int = 1_000_000
    processSingles: bool = True
    maxNumberOfPeaks: int = 200
    maxFootprintArea: int = 100_000
    maxAreaTimesPeaks: float = 1e7
    maxFootprintSize: int = 0
    catchFailures: bool = True
    pseudoColumns: tuple[str, ...] = field(default=("merge_peak_sky", "sky_source"))

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, f.type, getattr(self, f.name)))
        self.validate()

    # -- checks -------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the first field with an impossible value."""

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(f"DeblendConfig.{name} {what}, got {getattr(self, name)!r}")

        need(self.maxIter >= 1, "maxIter", "must be >= 1")
        need(self.minIter >= 0, "minIter", "must be >= 0")
        # the default minIter above a small maxIter is fine: the fit stops at maxIter
        default_min = type(self).__dataclass_fields__["minIter"].default
        need(
            self.minIter <= self.maxIter or self.minIter == default_min,
            "minIter",
            f"must be <= maxIter ({self.maxIter})",
        )
        unknown = [p for p in self.badMask if p not in KNOWN_MASK_PLANES]
        need(
            not unknown,
            "badMask",
            f"names unknown mask plane(s) {unknown} (known: {sorted(KNOWN_MASK_PLANES)})",
        )
        need(
            math.isfinite(self.relativeError) and self.relativeError > 0,
            "relativeError",
            "must be a positive number",
        )
        need(math.isfinite(self.morphThresh), "morphThresh", "must be finite")
        need(
            math.isfinite(self.backgroundThresh) and self.backgroundThresh >= 0,
            "backgroundThresh",
            "must be >= 0",
        )
        need(self.maxProxIter >= 1, "maxProxIter", "must be >= 1")
        need(self.resizeFrequency >= 0, "resizeFrequency", "must be >= 0 (0: never)")
        need(0 <= self.monotonicSlack <= 1, "monotonicSlack", "must be between 0 and 1")
        need(
            math.isfinite(self.modelPsfSigma) and self.modelPsfSigma > 0,
            "modelPsfSigma",
            "must be positive",
        )
        need(
            self.modelPsfSize >= 1 and self.modelPsfSize % 2 == 1,
            "modelPsfSize",
            "must be a positive odd number",
        )
        need(not math.isnan(self.minSNR), "minSNR", "must be a number")
        need(
            self.convolutionType in _CONVOLUTIONS,
            "convolutionType",
            f"must be one of {_CONVOLUTIONS}",
        )
        need(self.sourceModel in _SOURCE_MODELS, "sourceModel", f"must be one of {_SOURCE_MODELS}")
        need(
            self.background in BACKGROUND_MODES, "background", f"must be one of {BACKGROUND_MODES}"
        )
        need(
            math.isfinite(self.backgroundSignificance) and self.backgroundSignificance >= 0,
            "backgroundSignificance",
            "must be >= 0",
        )
        need(self.backgroundCell >= 1, "backgroundCell", "must be >= 1")
        need(self.backgroundMargin >= 0, "backgroundMargin", "must be >= 0")
        for name in (
            "maxSpectrumCutoff",
            "maxNumberOfPeaks",
            "maxFootprintArea",
            "maxFootprintSize",
        ):
            need(getattr(self, name) >= 0, name, "must be >= 0 (0: no limit)")
        need(
            not math.isnan(self.maxAreaTimesPeaks) and self.maxAreaTimesPeaks >= 0,
            "maxAreaTimesPeaks",
            "must be >= 0 (0: no limit)",
        )

    # -- derived settings ---------------------------------------------------------
    @property
    def max_components(self) -> int:
        """Components per source given to `vermilion.core.init_all_sources`."""
        return 2 if self.sourceModel == "double" else 1

    @property
    def init_min_snr(self) -> float:
        """The ``min_snr`` of the initialization (infinite for ``sourceModel="compact"``)."""
        return math.inf if self.sourceModel == "compact" else float(self.minSNR)

    def init_options(self) -> dict[str, Any]:
        """How the pipeline initializes sources with this config.

        Returns
        -------
        dict
            Keyword arguments of `vermilion.core.init_all_sources` and
            `vermilion.core.Chi2InitParameters`: ``min_snr``, ``thresh``,
            ``max_components``, ``bg_thresh`` and ``monotonic_slack``.
        """
        return {
            "min_snr": self.init_min_snr,  # infinite for "compact": model-PSF sources
            "thresh": self.morphThresh,
            "max_components": self.max_components,
            "bg_thresh": self.backgroundThresh,
            "monotonic_slack": self.monotonicSlack,
        }

    def parameterization(self) -> functools.partial:
        """How the pipeline parameterizes components: proximal ADAM with this config.

        For ``Blend.parameterize`` or `vermilion.core.parameterize_sources`.
        """
        from vermilion.core import init_adaprox_component

        return functools.partial(
            init_adaprox_component,
            bg_thresh=self.backgroundThresh,
            max_prox_iter=self.maxProxIter,
            monotonic_slack=self.monotonicSlack,
        )

    # -- conversions --------------------------------------------------------------
    @classmethod
    def coerce(cls, config: DeblendConfig | Mapping | str | os.PathLike | None) -> DeblendConfig:
        """A config given as itself, None (the defaults), a mapping of fields or a file."""
        if config is None:
            return cls()
        if isinstance(config, DeblendConfig):
            return config
        if isinstance(config, Mapping):
            return cls.from_dict(config)
        return cls.from_file(config)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-compatible values (tuples as lists), in field order."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DeblendConfig:
        """Build from a mapping; unknown keys raise ValueError naming them."""
        return cls().override(values)

    def override(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> DeblendConfig:
        """A copy with some fields changed: ``config.override({"maxIter": 100})``.

        Values may be strings (``"100"``, ``"true"``, ``"BAD,SAT"``); they are
        converted to the field's type. Unknown names raise ValueError.
        """
        changes = {**(values or {}), **kwargs}
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(
                f"Unknown DeblendConfig field(s) {unknown}; the fields are {sorted(known)}"
            )
        return dataclasses.replace(self, **changes)

    @_class_or_instance_method
    def from_args(self_or_cls, args: Iterable[str]) -> DeblendConfig:
        """Apply ``key=value`` strings (e.g. from ``--config maxIter=100``).

        Works on the class (starting from the defaults) or on an instance:
        ``DeblendConfig.from_args(["maxIter=100"])``, ``config.from_args([...])``.
        Values are parsed as YAML scalars or lists (``badMask=[BAD, SAT]`` or
        ``badMask=BAD,SAT``).
        """
        base = self_or_cls if isinstance(self_or_cls, DeblendConfig) else self_or_cls()
        changes: dict[str, Any] = {}
        for arg in args:
            key, sep, text = str(arg).partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"Config override {arg!r} is not of the form name=value")
            try:
                changes[key] = _parse_text(text.strip())
            except ValueError as exc:
                raise ValueError(f"Config override {arg!r}: {exc}") from None
        return base.override(changes)

    @classmethod
    def from_file(cls, path: str | os.PathLike, overrides: Iterable[str] = ()) -> DeblendConfig:
        """Load a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file of field values.

        The file may hold the fields at its top level or under a ``deblend`` (or
        ``deblend_config``) section. ``overrides`` are ``key=value`` strings
        applied afterwards.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No config file at {path}")
        text = path.read_text()
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                import tomllib

                data = tomllib.loads(text)
            elif suffix in (".yaml", ".yml", ".json", ""):
                import yaml

                data = yaml.safe_load(text)
            else:
                raise ValueError(f"{path}: unknown config format {suffix!r} (use .yaml or .toml)")
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(f"{path}: cannot parse the config: {exc}") from exc
        data = data or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: a config file must hold a mapping of field names to values")
        for section in ("deblend", CONFIG_KEY):
            if isinstance(data.get(section), Mapping):
                data = data[section]
                break
        try:
            config = cls.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
        return config.from_args(overrides) if overrides else config

    def save(self, path: str | os.PathLike) -> None:
        """Write the config as YAML (or TOML for a ``.toml`` path), atomically."""
        from vermilion.core.files import atomic_write_file

        path = Path(path)
        if path.suffix.lower() == ".toml":
            text = _to_toml(self.to_dict())
        else:
            import yaml

            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        atomic_write_file(path, lambda f: f.write(text.encode()))

    def __str__(self) -> str:
        return "\n".join(f"{k} = {v!r}" for k, v in self.to_dict().items())


#: Rubin's name of `DeblendConfig` (``lsst.meas.extensions.scarlet.ScarletDeblendConfig``).
ScarletDeblendConfig = DeblendConfig


# ---- value conversion -------------------------------------------------------------


def _parse_text(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError as exc:
        if text[:1] in "[{":  # a list or mapping that does not close: never a plain string
            first = str(exc).strip().splitlines()[0]
            raise ValueError(f"{text!r} is not a valid list or mapping ({first})") from None
        return text


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    kind = str(annotation)
    where = f"DeblendConfig.{name}"
    if kind.startswith("tuple"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif value is None:
            value = []
        if not isinstance(value, Iterable):
            raise ValueError(f"{where} must be a list of names, got {value!r}")
        if isinstance(value, Mapping):
            raise ValueError(f"{where} must be a list of names, got {value!r}")
        items = tuple(value)
        for item in items:
            if not isinstance(item, str) or not _NAME_RE.fullmatch(item):
                raise ValueError(
                    f"{where} must be a list of names such as [BAD, SAT] or BAD,SAT; "
                    f"{item!r} is not a name"
                )
        return items
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{where} must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be an integer, got {value!r}") from None
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return int(number)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"{where} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number, got {value!r}") from None
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _to_toml(values: Mapping[str, Any]) -> str:
    import json

    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float):
            text = repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
        elif isinstance(value, list):
            text = "[" + ", ".join(json.dumps(v) for v in value) + "]"
        else:
            text = json.dumps(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"
