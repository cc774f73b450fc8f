"""The whole configuration: every section, and the checks that span sections."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from lockerd.config.api import Api
from lockerd.config.base import Strict
from lockerd.config.cabinet import Cabinet
from lockerd.config.camera import Camera
from lockerd.config.carriers import Carrier
from lockerd.config.compartments import Compartment
from lockerd.config.doors import Doors
from lockerd.config.escalation import Escalation
from lockerd.config.gpio import Gpio
from lockerd.config.hardware import Hardware
from lockerd.config.logging import Logging
from lockerd.config.mqtt import Mqtt
from lockerd.config.oplog import Oplog
from lockerd.config.paths import Paths
from lockerd.config.rules import Rules
from lockerd.config.storage import Storage
from lockerd.drivers.profiles import profile


class Config(Strict):
    """The whole cabinet configuration."""

    cabinet: Cabinet
    hardware: Hardware = Field(default_factory=Hardware)
    compartments: list[Compartment] = Field(description="Compartments of the cabinet.",
                                            min_length=1)
    doors: Doors = Field(default_factory=Doors)
    storage: Storage = Field(default_factory=Storage)
    rules: Rules = Field(default_factory=Rules)
    carriers: list[Carrier] = Field(default_factory=list,
                                    description="Carriers authorised to use the cabinet.")
    mqtt: Mqtt = Field(default_factory=Mqtt)
    paths: Paths = Field(default_factory=Paths)
    api: Api = Field(default_factory=Api)
    gpio: Gpio = Field(default_factory=Gpio)
    oplog: Oplog = Field(default_factory=Oplog)
    logging: Logging = Field(default_factory=Logging)
    escalation: Escalation = Field(default_factory=Escalation,
                                   description="Tiers of unresolved incidents.")
    camera: Camera = Field(default_factory=Camera, description="Camera guard and evidence.")

    @field_validator("compartments")
    @classmethod
    def _unique_ids(cls, value: list[Compartment]) -> list[Compartment]:
        ids = [c.id for c in value]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate compartment ids: {dupes}")
        return value

    @model_validator(mode="after")
    def _wiring(self) -> Config:
        boards = {b.address: b for b in self.hardware.boards}
        used: dict[tuple[int, int], int] = {}
        for comp in self.compartments:
            board = boards.get(comp.board)
            if board is None:
                raise ValueError(f"compartment {comp.id}: board {comp.board} is not configured")
            if comp.channel >= board.channels:
                raise ValueError(f"compartment {comp.id}: channel {comp.channel} is beyond "
                                 f"board {comp.board}'s {board.channels} channels")
            other = used.setdefault((comp.board, comp.channel), comp.id)
            if other != comp.id:
                raise ValueError(f"compartments {other} and {comp.id} share board {comp.board} "
                                 f"channel {comp.channel}")
        for board in self.hardware.boards:
            limit = profile(board.profile).max_pulse_ms
            if self.doors.pulse_ms > limit:
                raise ValueError(f"doors.pulse_ms {self.doors.pulse_ms} exceeds the {limit} ms "
                                 f"maximum pulse of board {board.address} ({board.profile})")
        for switch in self.gpio.door_switches:
            if self.compartment(switch.compartment) is None:
                raise ValueError(f"gpio door switch on unknown compartment {switch.compartment}")
        carriers = [c.id for c in self.carriers]
        if len(set(carriers)) != len(carriers):
            raise ValueError("carrier ids must be unique")
        return self

    def compartment(self, compartment_id: int) -> Compartment | None:
        """The compartment with that number, or None."""
        return next((c for c in self.compartments if c.id == compartment_id), None)
