"""lockerd: controller daemon for smart parcel-locker cabinets."""

__version__ = "0.1.0"
