"""Driver exception hierarchy: foreign exceptions (serial, pymodbus, OpenCV) are wrapped at the boundary."""


class DriverError(Exception):
    """Any failure talking to hardware."""


class DriverTimeout(DriverError):
    """The device did not answer in time; for an unlock this means the outcome is unknown."""


class DriverUnavailable(DriverError):
    """The device or its port is not there (unplugged adapter, board powered off)."""


class FrameError(DriverError):
    """A reply was garbled: bad checksum, wrong length, wrong echo. Never acted on."""
