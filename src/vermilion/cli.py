"""The ``vermilion`` command: demo, repositories, ingest, deblend, pictures and reports.

Every subcommand prints one clear line on error and exits non-zero; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

# a light module (no butler, no astropy): `--help` stays fast
from .repo.butler import DEFAULT_COADD_RUN, DEFAULT_DEBLEND_RUN

__all__ = ["add_deblend_arguments", "build_parser", "main", "main_deblend"]


_TRACKER_QUIET = "ignore:resource_tracker:UserWarning"


def _bands(text: str) -> list[str]:
    text = text.strip()
    return text.replace(",", " ").split() if ("," in text or " " in text) else list(text)


# ---- subcommand handlers ------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(
        out=args.out,
        size=args.size,
        bands=args.bands,
        density=args.density,
        seed=args.seed,
        workers=args.workers,
        report=not args.no_report,
        progress=not args.no_progress,
    )
    return 0


def _cmd_repo_create(args: argparse.Namespace) -> int:
    from .repo import RepoError, create_repo

    try:
        _create_repo(args, create_repo)
    except RepoError as exc:
        # the Python keyword in the message becomes the option of this command
        text = str(exc).replace("pass exist_ok=True", "pass --exist-ok")
        raise type(exc)(text) from exc
    print(f"created repository {args.path} (skymap {args.skymap!r}, bands {args.bands})")
    return 0


def _create_repo(args: argparse.Namespace, create_repo) -> None:
    create_repo(
        args.path,
        skymap=args.skymap,
        bands=_bands(args.bands),
        tracts=args.tracts,
        patches=tuple(args.patches),
        patch_shape=tuple(args.patch_shape),
        pixel_scale=args.pixel_scale,
        patch_border=args.border,
        center=tuple(args.center),
        registry_db=args.registry_db,
        namespace=args.namespace,
        exist_ok=args.exist_ok,
    )


def _cmd_repo_info(args: argparse.Namespace) -> int:
    import json

    from .repo import describe_repo, open_repo

    print(json.dumps(describe_repo(open_repo(args.path)), indent=2, default=str))
    return 0


def _band_files(items: Sequence[str], what: str) -> dict[str, str]:
    """``BAND=FILE`` arguments as band -> file."""
    out = {}
    for item in items:
        band, sep, path = item.partition("=")
        if not sep or not band or not path:
            raise ValueError(f"expected {what}BAND=FILE, got {item!r}")
        if band in out:
            raise ValueError(f"band {band!r} is given twice ({out[band]} and {path}); give it once")
        out[band] = path
    return out


def _cmd_ingest_coadd(args: argparse.Namespace) -> int:
    from .repo import ingest_coadd

    files = _band_files(args.files, "")
    psfs = _band_files(args.psf or (), "--psf ")
    unknown = sorted(set(psfs) - set(files))
    if unknown:
        raise ValueError(f"--psf names band(s) {unknown} that have no coadd file")
    refs = ingest_coadd(
        args.repo,
        files,
        tract=args.tract,
        patch=args.patch,
        run=args.run,
        psfs=psfs or None,
        overwrite=args.replace,
    )
    where = f"tract {args.tract}, patch {args.patch}, run {args.run}"
    stored = ", ".join(f"{band}={files[band]}" for band in refs)
    print(f"ingested {len(refs)} dataset(s) into {args.repo} ({where}): {stored}")
    return 0


def _cmd_ingest_models(args: argparse.Namespace) -> int:
    from .repo import ingest_model_data

    ingest_model_data(args.repo, args.file, tract=args.tract, patch=args.patch, run=args.run)
    where = f"tract {args.tract}, patch {args.patch}, run {args.run}"
    print(f"ingested {args.file} into {args.repo} ({where})")
    return 0


def _cmd_ingest_sim(args: argparse.Namespace) -> int:
    from .pipeline import ingest_simulated_patch
    from .repo import get_skymap, open_repo
    from .sim import simulate_patch

    if args.size is None:  # the patch's own shape (its outer box)
        sky = get_skymap(open_repo(args.repo))
        args.size = list(sky[args.tract].patch(args.patch).outer_bbox.shape)
    patch = simulate_patch(tuple(args.size), bands=args.bands, density=args.density, seed=args.seed)
    ingest_simulated_patch(args.repo, patch, args.tract, args.patch, run=args.run)
    print(
        f"simulated and ingested a {args.size[0]} x {args.size[1]} px patch of "
        f"{len(patch.truth)} sources into {args.repo} (tract {args.tract}, patch {args.patch})"
    )
    return 0


_DEBLEND_DESCRIPTION = (
    "Detect, deblend and store every patch given (idempotent: done patches are skipped "
    "unless --redo), on a local Dask cluster or the scheduler given."
)


def add_deblend_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``vermilion deblend`` to ``parser``.

    Parameters
    ----------
    parser
        The parser (or subparser) of the command.

    Returns
    -------
    argparse.ArgumentParser
        ``parser``, for chaining.
    """
    parser.add_argument("--repo", required=True, help="data repository path")
    parser.add_argument("--tract", type=int, required=True, help="tract id")
    parser.add_argument(
        "--patch", type=int, nargs="+", required=True, help="sequential patch id(s)"
    )
    parser.add_argument("--skymap", default=None, help="sky map (default: the repository's)")
    parser.add_argument(
        "--bands",
        default=None,
        help="bands to use, e.g. 'griz' or 'g,r,i' (default: every band of the repository; "
        "a patch without all of them is refused: give the bands it has)",
    )
    parser.add_argument(
        "--input",
        action="append",
        default=None,
        help=f"input collection(s) holding the coadds (default: {DEFAULT_COADD_RUN})",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        help="output collection: a CHAINED collection of a new run OUTPUT/<timestamp> and the "
        f"inputs, as pipetask -o makes it (default: {DEFAULT_DEBLEND_RUN} unless --output-run "
        "is given)",
    )
    parser.add_argument(
        "--output-run",
        default=None,
        help="output run (with --output: the run put in front of its chain; alone: that run "
        "only, no chain)",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="YAML or TOML file of DeblendConfig fields (default: none, the defaults)",
    )
    parser.add_argument(
        "-c",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one config field, e.g. -c maxIter=100 (repeatable; default: none)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address, or synchronous/threads/processes (default: local cluster)",
    )
    parser.add_argument("-j", "--workers", type=int, default=None, help="cores (default: all)")
    parser.add_argument("--redo", action="store_true", help="redo patches that are done")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--show-config", action="store_true", help="print the config and exit")
    _state_defaults(parser)
    return parser


def main_deblend(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run ``vermilion deblend`` from parsed arguments (or an argument list).

    Parameters
    ----------
    args
        The parsed options of `add_deblend_arguments`, or the argument list
        (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 when every patch was deblended or already done, 1 when a
        patch failed.
    """
    from .pipeline import DeblendConfig, deblend_patches

    if args is None or not isinstance(args, argparse.Namespace):
        parser = add_deblend_arguments(
            argparse.ArgumentParser(prog="vermilion deblend", description=_DEBLEND_DESCRIPTION)
        )
        args = parser.parse_args(args)
    config = (
        DeblendConfig.from_file(args.config) if getattr(args, "config", None) else DeblendConfig()
    )
    overrides = getattr(args, "overrides", None) or []
    if overrides:
        config = config.from_args(overrides)
    if getattr(args, "show_config", False):
        print(config)
        return 0
    bands = getattr(args, "bands", None)
    if isinstance(bands, str):
        split = "," in bands or " " in bands
        bands = bands.replace(",", " ").split() if split else list(bands)
    # After Ctrl-C, multiprocessing's resource tracker (a child started with these
    # options) would warn about the semaphores it then cleans up: noise, not news.
    if _TRACKER_QUIET not in sys.warnoptions:
        sys.warnoptions.append(_TRACKER_QUIET)
    committed: list[int] = []

    def note(result) -> None:
        if result.status == "done":
            committed.append(result.patch)

    try:
        summary = _deblend(args, config, bands, deblend_patches, note)
    except KeyboardInterrupt:
        run, chain = getattr(args, "output_run", None), getattr(args, "output", None)
        where = f"run {run}" if run else f"collection {chain or DEFAULT_DEBLEND_RUN}"
        said = (
            f"patch(es) {', '.join(map(str, committed))} of tract {args.tract} were written "
            f"to {where} before it; the others were not"
            if committed
            else "no patch was written"
        )
        raise KeyboardInterrupt(said) from None
    print(summary)
    return 1 if summary.failed else 0


def _deblend(args, config, bands, deblend_patches, note):
    return deblend_patches(
        args.repo,
        args.tract,
        args.patch,
        config=config,
        scheduler=getattr(args, "scheduler", None),
        redo=getattr(args, "redo", False),
        workers=getattr(args, "workers", None),
        skymap=getattr(args, "skymap", None),
        bands=bands,
        input_collections=getattr(args, "input", None),
        output_run=getattr(args, "output_run", None),
        output=getattr(args, "output", None),
        progress=not getattr(args, "no_progress", False),
        on_patch_done=note,
    )


def _cmd_deblend(args: argparse.Namespace) -> int:
    return main_deblend(args)


def _load_blend(args: argparse.Namespace):
    from .pipeline.restart import load_blend

    return load_blend(
        args.repo,
        tract=args.tract,
        patch=args.patch,
        blend_id=args.blend,
        collections=args.collections,
        with_exposure=not args.psf_only,
    )


def _cmd_show(args: argparse.Namespace) -> int:
    from .core import weight_sources
    from .display import render_blend_pictures

    blend, _parent = _load_blend(args)
    if args.use_flux:
        weight_sources(blend)
    path = render_blend_pictures(blend, args.out, sources=args.sources, use_flux=args.use_flux)
    print(f"wrote {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .demo import write_patch_report

    index = write_patch_report(
        args.repo,
        tract=args.tract,
        patch=args.patch,
        out_dir=args.out,
        collections=args.collections,
        workers=args.workers,
        max_blends=args.max_blends,
        progress=not args.no_progress,
    )
    print(f"wrote {index}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    from .sim import simulate_patch

    patch = simulate_patch(tuple(args.size), bands=args.bands, density=args.density, seed=args.seed)
    np.savez_compressed(
        args.out,
        images=patch.images,
        variance=patch.variance,
        mask=patch.mask,
        psfs=patch.psfs,
        filters=np.array(patch.bands),
    )
    print(f"wrote {args.out}: {len(patch.truth)} sources, bands {''.join(patch.bands)}")
    return 0


# ---- parser -----------------------------------------------------------------------------------


def _repo_location(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", required=True, help="data repository path")
    p.add_argument("--tract", type=int, required=True, help="tract id")
    p.add_argument("--patch", type=int, required=True, help="sequential patch id")
    p.add_argument(
        "--collections",
        nargs="+",
        default=None,
        help="collections to search (default: the deblender's output and the coadds)",
    )


def _ingest_target(p: argparse.ArgumentParser, run: str) -> None:
    p.add_argument("--repo", required=True, help="data repository path")
    p.add_argument("--tract", type=int, required=True, help="tract id")
    p.add_argument("--patch", type=int, required=True, help="sequential patch id")
    p.add_argument("--run", default=run, help="run to put the data in (default: %(default)s)")


def _add_ingest_parser(sub) -> None:
    """The ``vermilion ingest`` subcommands (coadd, models, sim)."""
    p = sub.add_parser(
        "ingest", help="put coadds, simulated patches or model files in a repository"
    )
    isub = p.add_subparsers(dest="ingest_command", metavar="WHAT", required=True)
    r = isub.add_parser("coadd", help="one FITS file per band (see docs/repository.md)")
    _ingest_target(r, DEFAULT_COADD_RUN)
    r.add_argument(
        "files",
        nargs="+",
        metavar="BAND=FILE",
        help="e.g. g=coadd_g.fits: vermilion's layout, or an lsst.afw.image Exposure file",
    )
    r.add_argument(
        "--psf",
        action="append",
        metavar="BAND=FILE",
        help="a FITS file holding the PSF image of a band (repeat per band); needed for "
        "afw exposures, whose PSF vermilion does not evaluate (default: the file's own PSF)",
    )
    r.add_argument(
        "--replace",
        action="store_true",
        help="replace a band the run already holds with other pixels (default: an error)",
    )
    r.set_defaults(func=_cmd_ingest_coadd)
    r = isub.add_parser("models", help="a model file (ours, Rubin .json or .scarlet)")
    _ingest_target(r, "models")
    r.add_argument("file", help="the model file")
    r.set_defaults(func=_cmd_ingest_models)
    r = isub.add_parser("sim", help="simulate a patch and ingest it with its truth")
    _ingest_target(r, DEFAULT_COADD_RUN)
    r.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="patch size in pixels (default: the patch's shape in the sky map)",
    )
    r.add_argument("--bands", default="ugrizy", help="bands to simulate")
    r.add_argument("--density", type=float, default=100.0, help="sources per square arcminute")
    r.add_argument("--seed", type=int, default=0, help="random seed")
    r.set_defaults(func=_cmd_ingest_sim)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vermilion`` command."""
    parser = argparse.ArgumentParser(
        prog="vermilion",
        description="Fast multi-band deblending with a Rubin-butler data repository.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        help="simulate a patch, deblend it into a local repository, write pictures and a report",
        description="The main job on the embedded default: simulate an LSST-like 6-band patch, "
        "create a repository, ingest, detect, deblend on all cores, rebuild one blend, write its "
        "pictures and the patch report, and print a summary with the accuracy against truth.",
    )
    p.add_argument("--out", default="vermilion-demo", help="output folder (default: %(default)s)")
    p.add_argument("--size", type=int, default=1000, help="patch size in pixels (square)")
    p.add_argument("--bands", default="ugrizy", help="bands (default: %(default)s)")
    p.add_argument("--density", type=float, default=100.0, help="sources per square arcminute")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("-j", "--workers", type=int, default=None, help="cores (default: all)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML patch report")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("repo", help="create or describe a data repository")
    rsub = p.add_subparsers(dest="repo_command", metavar="ACTION", required=True)
    r = rsub.add_parser(
        "create",
        help="create a repository on the Rubin data butler",
        description="Create a butler repository with vermilion's storage classes, "
        "a sky map of tracts and patches, and the bands.",
    )
    r.add_argument("path", help="repository folder")
    r.add_argument("--skymap", default="vermilion", help="sky map name (default: %(default)s)")
    r.add_argument("--bands", default="ugrizy", help="bands, e.g. ugrizy or g,r,i")
    r.add_argument("--tracts", type=int, default=1, help="number of tracts")
    r.add_argument(
        "--patches",
        type=int,
        nargs=2,
        default=(10, 10),
        metavar=("NX", "NY"),
        help="patches per tract along x and y",
    )
    r.add_argument(
        "--patch-shape",
        type=int,
        nargs=2,
        default=(4000, 4000),
        metavar=("H", "W"),
        help="patch size in pixels",
    )
    r.add_argument("--pixel-scale", type=float, default=0.2, help="arcsec per pixel")
    r.add_argument("--border", type=int, default=0, help="patch overlap border in pixels")
    r.add_argument(
        "--center",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("RA", "DEC"),
        help="sky centre of the first tract, degrees",
    )
    r.add_argument(
        "--registry-db",
        default=None,
        help="registry database URL (default: SQLite in the repository)",
    )
    r.add_argument(
        "--namespace",
        default=None,
        help="PostgreSQL schema of the registry (default: the database's default schema)",
    )
    r.add_argument("--exist-ok", action="store_true", help="do nothing if it already exists")
    r.set_defaults(func=_cmd_repo_create)
    r = rsub.add_parser("info", help="describe a repository")
    r.add_argument("path", help="repository folder")
    r.set_defaults(func=_cmd_repo_info)

    _add_ingest_parser(sub)

    p = sub.add_parser(
        "deblend",
        help="detect and deblend patches into the repository",
        description=_DEBLEND_DESCRIPTION,
    )
    add_deblend_arguments(p)
    p.set_defaults(func=_cmd_deblend)

    p = sub.add_parser("show", help="picture of one stored blend: scene and sources")
    _repo_location(p)
    p.add_argument("--blend", type=int, required=True, help="parent id of the blend")
    p.add_argument(
        "--sources", type=int, default=None, help="show at most N sources (default: all)"
    )
    p.add_argument("--use-flux", action="store_true", help="show the re-apportioned fluxes")
    p.add_argument(
        "--psf-only", action="store_true", help="rebuild from the PSFs only (no exposure cutout)"
    )
    p.add_argument("--out", required=True, help="picture file (.png, .pdf, ...)")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("report", help="static HTML report of every blend of a patch")
    _repo_location(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("-j", "--workers", type=int, default=None, help="processes (default: all)")
    p.add_argument(
        "--max-blends", type=int, default=None, help="only the first N blends (default: all)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("simulate", help="simulate a patch into an .npz file")
    p.add_argument("--out", required=True, help="output .npz file")
    p.add_argument(
        "--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"), help="pixels"
    )
    p.add_argument("--bands", default="ugrizy", help="bands to simulate")
    p.add_argument("--density", type=float, default=100.0, help="sources per square arcminute")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=_cmd_simulate)
    _state_defaults(parser)
    return parser


def _state_defaults(parser: argparse.ArgumentParser) -> None:
    """Make every option's help say its default (flags: off), in this parser and below."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                _state_defaults(sub)
            continue
        if not action.option_strings or action.help in (None, argparse.SUPPRESS):
            continue
        if action.required or "default" in action.help or action.dest == "help":
            continue
        if isinstance(action, argparse._StoreTrueAction):
            action.help += " (default: off)"
        else:
            action.help += " (default: %(default)s)"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, like the errors (--debug: Python's own form)."""
    print(f"vermilion: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vermilion`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.showwarning = _show_warning
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
    except BrokenPipeError:
        # the reader went away (`vermilion repo info | head`): stop quietly, and keep
        # Python from failing again when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as exc:
        said = f": {exc}" if str(exc) else ""
        print(f"vermilion: interrupted{said}", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI turns every failure into one line
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"vermilion: error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
