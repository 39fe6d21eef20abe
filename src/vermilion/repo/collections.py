"""Output collections that chain to their inputs, as ``pipetask run -o`` makes them.

Rubin's convention: a processing step writes into a new RUN collection
``OUTPUT/<timestamp>`` and makes ``OUTPUT`` a CHAINED collection of
``[that run, *the inputs]`` (the inputs flattened). Running again puts a new run in
front of the chain, so ``Butler(repo, collections=[OUTPUT])`` finds the newest
outputs first and the inputs (the coadds) through the same name.
`chain_output_run` does exactly that for ``vermilion deblend --output``; the
timestamp is the one ``pipetask`` writes (``20260131T120000Z``, UTC).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

__all__ = ["chain_output_run", "collection_type", "output_run_name", "remove_empty_run"]


def output_run_name(output: str, when: datetime.datetime | None = None) -> str:
    """``OUTPUT/<timestamp>``: the run name ``pipetask run -o OUTPUT`` would use.

    Parameters
    ----------
    output
        The output (CHAINED) collection.
    when
        The time (default: now); naive times are taken as UTC.
    """
    when = when or datetime.datetime.now(tz=datetime.UTC)
    if when.tzinfo is not None:
        when = when.astimezone(datetime.UTC)
    return f"{output}/{when:%Y%m%dT%H%M%S}Z"


def collection_type(butler: Butler, name: str) -> str | None:
    """``"RUN"``, ``"CHAINED"``, ... of a collection, or None when it does not exist."""
    from lsst.daf.butler import MissingCollectionError

    try:
        return butler.collections.get_info(name).type.name
    except MissingCollectionError:
        return None


def chain_output_run(
    butler: Butler,
    output: str,
    inputs: Sequence[str],
    run: str | None = None,
) -> str:
    """Register a new run and put it in front of the CHAINED collection ``output``.

    ``output`` becomes ``[run, *previous chain]`` when it exists, else ``[run,
    *inputs]`` (chains among the inputs flattened), as ``pipetask run -o`` does.

    Parameters
    ----------
    butler
        A writeable butler of the repository.
    output
        The output collection (created as CHAINED when missing).
    inputs
        The input collections; when ``output`` exists they must appear in its
        chain, in this order, as pipetask requires.
    run
        The run to write into (default: ``output/<timestamp>``, made unique).

    Returns
    -------
    str
        The run, first in the chain.

    Raises
    ------
    ValueError
        ``output`` exists and is not a CHAINED collection, or its chain does not hold
        the inputs.
    """
    from lsst.daf.butler import CollectionType

    kind = collection_type(butler, output)
    if kind not in (None, "CHAINED"):
        raise ValueError(
            f"The output collection {output!r} exists as a {kind} collection, not a CHAINED "
            "one: choose another --output (or write into it with --output-run)"
        )
    flat_inputs = _flatten(butler, inputs)
    if kind is None:
        chain = list(flat_inputs)
    else:
        chain = _flatten(butler, butler.collections.get_info(output).children)
        if flat_inputs and not _contiguous(flat_inputs, chain):
            raise ValueError(
                f"The output collection {output!r} chains to {chain}, which does not hold the "
                f"inputs {flat_inputs} in that order: use the inputs it was made with, or "
                "another --output"
            )
    if run is None:
        run = _unique_run(butler, output)
    butler.collections.register(output, CollectionType.CHAINED)
    butler.collections.register(run, CollectionType.RUN)
    chain = [run, *(c for c in chain if c != run)]
    butler.collections.redefine_chain(output, chain)
    return run


def remove_empty_run(butler: Butler, run: str) -> bool:
    """Remove ``run`` (and take it out of every chain) if it holds no dataset.

    A rerun whose patches were all done already leaves the chain as it was.
    Returns True when the run was removed.
    """
    info = butler.collections.get_info(run, include_summary=True)
    if info.dataset_types:
        return False
    butler.removeRuns([run], unlink_from_chains=True)
    return True


def _flatten(butler: Butler, names: Sequence[str]) -> list[str]:
    if not names:
        return []
    return list(butler.collections.query(list(names), flatten_chains=True, include_chains=False))


def _contiguous(part: Sequence[str], whole: Sequence[str]) -> bool:
    n = len(part)
    return any(list(whole[i : i + n]) == list(part) for i in range(len(whole) - n + 1))


def _unique_run(butler: Butler, output: str) -> str:
    """``output/<timestamp>``, waiting a second when a run of this second exists."""
    while True:
        run = output_run_name(output)
        if collection_type(butler, run) is None:
            return run
        time.sleep(0.2)
