"""Errors raised by `vermilion.repo` (no heavy imports here)."""

from __future__ import annotations

__all__ = [
    "BBoxError",
    "CollectionNameError",
    "CorruptFileError",
    "DataIdError",
    "DatasetMissingError",
    "FormatVersionError",
    "PsfMissingError",
    "RepoError",
    "RepoVersionError",
]


class RepoError(Exception):
    """Base class of every error raised by `vermilion.repo`."""


class RepoVersionError(RepoError):
    """The repository was not created by this version of vermilion (or not by vermilion)."""


class DataIdError(RepoError, LookupError):
    """A data id names a band, tract, patch or skymap that the repository does not have."""


class DatasetMissingError(RepoError, LookupError):
    """No dataset of that type and data id exists in the searched collections."""


class CorruptFileError(RepoError, ValueError):
    """A file cannot be read: truncated, not FITS, or missing a required part."""


class FormatVersionError(RepoError, ValueError):
    """A file was written in a format version this vermilion cannot read."""


class BBoxError(RepoError, ValueError):
    """A requested box is not inside the image it should be cut from."""


class PsfMissingError(RepoError, ValueError):
    """An exposure has no PSF vermilion can evaluate, and none was given (``psf=``)."""


class CollectionNameError(RepoError, ValueError):
    """A run or collection name is not valid (it would be a path outside the repository)."""
