"""A simulated patch put into a data repository: the setup of ``vermilion demo`` and
``vermilion ingest sim``.

The simulation (`vermilion.sim`) knows nothing of repositories and the repository
(`vermilion.repo`) nothing of simulations; this is where the two meet.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ingest_simulated_patch"]


def ingest_simulated_patch(
    repo: Any,
    sim: Any,
    tract: int,
    patch: int,
    *,
    run: str | None = None,
    skymap: str | None = None,
    create: bool = False,
) -> None:
    """Store a simulated patch (images, variance, mask, PSFs and truth) in a repository.

    Parameters
    ----------
    repo
        Repository path (or writeable ``Butler`` when ``create`` is False).
    sim
        A `vermilion.sim.SimulatedPatch` (anything with ``images``, ``variance``, ``mask``,
        ``psfs``, ``bands``, ``truth`` and ``shape``).
    tract, patch
        Where it goes.
    run
        Run to put the data in (default: the coadd run, `vermilion.repo.DEFAULT_COADD_RUN`).
    skymap
        Sky map name (default: the repository's).
    create
        First create the repository if it does not exist: one tract of one patch the size of
        the simulation, with the simulation's bands, under ``skymap``.
    """
    from vermilion.repo import create_repo, ingest_arrays

    if create:
        create_repo(
            repo,
            **({} if skymap is None else {"skymap": skymap}),
            bands=sim.bands,
            tracts=1,
            patches=(1, 1),
            patch_shape=tuple(sim.shape),
            exist_ok=True,
        )
    ingest_arrays(
        repo,
        sim.images,
        sim.variance,
        sim.mask,
        sim.psfs,
        sim.bands,
        tract=tract,
        patch=patch,
        **({} if run is None else {"run": run}),
        truth=sim.truth,
        skymap=skymap,
    )
