"""A Parsl site for ``bps submit`` on this machine's cores, with any parsl version.

``lsst.ctrl.bps.parsl.sites.Local`` passes ``checkpoint_mode`` to
``parsl.config.Config``, which parsl removed in 2025.12.8 (it moved to the memoizer):
with a newer parsl the stock site fails with ``unexpected keyword argument
'checkpoint_mode'``. `LocalSite` is that site, building the config either way. Use it
in a BPS file (see the guide's repository page)::

    computeSite: local
    site:
      local:
        class: vermilion.pipeline.bps_site.LocalSite
        cores: 2

Needs ``lsst-ctrl-bps-parsl`` (``pip install "vermilion[bps]"``).
"""

from __future__ import annotations

from typing import Any

try:
    import parsl.config
    from lsst.ctrl.bps.parsl.configuration import get_bps_config_value
    from lsst.ctrl.bps.parsl.sites import Local
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "vermilion.pipeline.bps_site needs the BPS Parsl plugin (lsst-ctrl-bps-parsl): "
        f'pip install "vermilion[bps]" ({exc})'
    ) from exc

__all__ = ["LocalSite"]


class LocalSite(Local):
    """`lsst.ctrl.bps.parsl.sites.Local`, working with parsl before and after 2025.12.8."""

    def get_parsl_config(self) -> Any:
        try:
            return super().get_parsl_config()
        except TypeError as exc:
            if "checkpoint_mode" not in str(exc):
                raise
        from parsl.dataflow.memoization import BasicMemoizer

        return parsl.config.Config(
            executors=self.get_executors(),
            monitoring=self.get_monitor(),
            retries=get_bps_config_value(self.site, "retries", int, 1),
            run_dir=get_bps_config_value(self.site, "run_dir", str, "runinfo"),
            memoizer=BasicMemoizer(checkpoint_mode="task_exit"),
        )
