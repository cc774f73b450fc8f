"""Cabinet configuration: pydantic models loaded from TOML, strict so a typo is an error, not a default.

One module per config section; everything is importable from here.
"""

from __future__ import annotations

from lockerd.config.api import Api
from lockerd.config.base import ConfigErrorList, Strict
from lockerd.config.cabinet import Cabinet
from lockerd.config.camera import Camera
from lockerd.config.carriers import Carrier
from lockerd.config.compartments import Compartment
from lockerd.config.doors import Doors
from lockerd.config.escalation import Escalation
from lockerd.config.gpio import Gpio, GpioDoorSwitch, GpioInput
from lockerd.config.hardware import Board, Hardware, IdCardReader, SerialPort
from lockerd.config.loading import (
    EXAMPLE_CONFIG_RESOURCE,
    ConfigError,
    example_config_path,
    example_config_text,
    load_config,
    parse_config,
)
from lockerd.config.logging import Logging
from lockerd.config.model import Config
from lockerd.config.mqtt import Mqtt
from lockerd.config.oplog import Oplog
from lockerd.config.paths import Paths
from lockerd.config.rules import Rules
from lockerd.config.storage import Storage
from lockerd.domain.ids import Size as Size

__all__ = [
    "EXAMPLE_CONFIG_RESOURCE",
    "Api",
    "Board",
    "Cabinet",
    "Camera",
    "Carrier",
    "Compartment",
    "Config",
    "ConfigError",
    "ConfigErrorList",
    "Doors",
    "Escalation",
    "Gpio",
    "GpioDoorSwitch",
    "GpioInput",
    "Hardware",
    "IdCardReader",
    "Logging",
    "Mqtt",
    "Oplog",
    "Paths",
    "Rules",
    "SerialPort",
    "Size",
    "Storage",
    "Strict",
    "example_config_path",
    "example_config_text",
    "load_config",
    "parse_config",
]
