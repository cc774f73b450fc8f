"""[cabinet]: who the cabinet is (Smart Parcel Locker Measures Art. 8)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from lockerd.config.base import Strict
from lockerd.domain.ids import CABINET_ID_PATTERN, GROUP_PATTERN


class Cabinet(Strict):
    """Identity of the cabinet (Smart Parcel Locker Measures Art. 8: name, address, number)."""

    id: str = Field(
        description="Cabinet id used in MQTT topics; letters, digits, '-' and '_' only.",
        pattern=CABINET_ID_PATTERN,
    )
    name: str = Field(description="Locker name shown to recipients (Art. 24).", min_length=1,
                      max_length=100)
    address: str = Field(description="Street address shown to recipients (Art. 24).", min_length=1,
                         max_length=200)
    registration_number: str = Field(
        description="Registration number with the postal administration (Art. 8).", min_length=1,
        max_length=64)
    groups: list[Annotated[str, Field(pattern=GROUP_PATTERN)]] = Field(
        default_factory=list, max_length=32,
        description="Groups this cabinet belongs to: an offline courier pass naming one of them "
                    "is valid here (docs/passes.md).")
    timezone: str = Field(default="Asia/Shanghai",
                          description="IANA time zone of the cabinet: reports, and the local "
                                      "storage deadline carriers get next to the UTC one.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
