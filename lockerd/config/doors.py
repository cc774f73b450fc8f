"""[doors]: door-control timing (pulse, confirmation, polling, left-open escalation)."""

from __future__ import annotations

from pydantic import Field, model_validator

from lockerd.config.base import Strict
from lockerd.drivers.profiles import MAX_PULSE_MS


class Doors(Strict):
    """Door-control timing (docs/lifecycle.md, door faults)."""

    open_confirm_s: float = Field(default=2.0, gt=0, le=10,
                                  description="A pulsed door must read open within this time.")
    poll_moving_ms: int = Field(default=50, ge=10, le=1000,
                                description="Sensor poll period while a door is in motion.")
    poll_idle_ms: int = Field(default=500, ge=50, le=10000,
                              description="Sensor poll period when all doors are at rest.")
    poll_fast_hold_s: float = Field(
        default=3.0, ge=0, le=60,
        description="A board whose door opened or closed this recently (or has a pulse pending, "
                    "or a flow waiting for its door) is polled at poll_moving_ms.")
    poll_switched_ms: int = Field(
        default=5000, ge=100, le=60000,
        description="Poll period of a board whose every door has a GPIO door switch: its inputs "
                    "are not needed, it is read only to know that it answers.")
    pulse_ms: int = Field(default=700, ge=100, le=MAX_PULSE_MS,
                          description="Lock relay pulse length (at most every board profile's "
                                      "maximum pulse).")
    close_timeout_s: float = Field(default=120.0, gt=0, le=3600,
                                   description="How long a flow waits for the door to close.")
    left_open_prompt_s: float = Field(default=10.0, gt=0,
                                      description="Door open this long: panel prompt.")
    left_open_alert_s: float = Field(default=30.0, gt=0,
                                     description="Door open this long: door_left_open alert.")
    left_open_incident_s: float = Field(default=60.0, gt=0,
                                        description="Door open this long: incident.")

    @model_validator(mode="after")
    def _escalation_order(self) -> Doors:
        if not self.left_open_prompt_s < self.left_open_alert_s < self.left_open_incident_s:
            raise ValueError("left_open_prompt_s < left_open_alert_s < left_open_incident_s "
                             "must hold")
        if self.poll_moving_ms > self.poll_idle_ms:
            raise ValueError("poll_moving_ms must not exceed poll_idle_ms")
        return self
