"""lockerd: controller daemon for smart parcel-locker cabinets."""

from importlib.metadata import PackageNotFoundError, version

# One source for the release: pyproject.toml's version, read from the installed metadata.
try:
    __version__ = version("lockerd")
except PackageNotFoundError:  # pragma: no cover - a checkout on sys.path without an install
    __version__ = "0+unknown"
