"""[gpio]: door switches, tamper switch, mains-fail signal, status LED and buzzer."""

from __future__ import annotations

from pydantic import Field, model_validator

from lockerd.config.base import Strict


class GpioInput(Strict):
    """A discrete input wired to a GPIO pin."""

    pin: int | str = Field(description="BCM number (17) or a gpiozero pin name ('GPIO17', "
                                       "'BOARD11').")
    active_low: bool = Field(default=True,
                             description="True when the contact pulls the pin low when active "
                                         "(switch to ground, internal pull-up).")


class GpioDoorSwitch(GpioInput):
    """A door switch wired to GPIO (faster than polling the lock board)."""

    compartment: int = Field(description="Compartment whose door the switch watches.", ge=1)


class Gpio(Strict):
    """GPIO: door switches, tamper switch, mains-fail signal, status LED, buzzer."""

    enabled: bool = Field(default=False, description="Use GPIO at all.")
    debounce_ms: int = Field(default=30, ge=1, le=1000,
                             description="An input must hold a new level this long to count.")
    door_switches: list[GpioDoorSwitch] = Field(default_factory=list,
                                                description="Door switches on GPIO.")
    tamper: GpioInput | None = Field(default=None,
                                     description="Cabinet tamper switch (active = opened).")
    mains_fail: GpioInput | None = Field(default=None,
                                         description="Mains-fail signal from the UPS "
                                                     "(active = on battery).")
    status_led: int | str | None = Field(default=None, description="Status LED output pin.")
    buzzer: int | str | None = Field(default=None, description="Buzzer output pin.")

    @model_validator(mode="after")
    def _pins_unique(self) -> Gpio:
        pins = [str(d.pin) for d in self.door_switches]
        pins += [str(i.pin) for i in (self.tamper, self.mains_fail) if i is not None]
        pins += [str(o) for o in (self.status_led, self.buzzer) if o is not None]
        dupes = sorted({p for p in pins if pins.count(p) > 1})
        if dupes:
            raise ValueError(f"GPIO pins used twice: {dupes}")
        doors = [d.compartment for d in self.door_switches]
        twice = sorted({c for c in doors if doors.count(c) > 1})
        if twice:
            raise ValueError(f"compartments with two GPIO door switches: {twice}")
        return self

    def switched_compartments(self) -> list[int]:
        """Compartments whose door state comes from a GPIO switch (none while GPIO is off)."""
        return [d.compartment for d in self.door_switches] if self.enabled else []
