"""The cabinet's shared vocabulary: size classes and identifier patterns, defined once for every layer.

Config validation, the panel API, the MQTT payloads, the topic builder and the domain all check
identifiers against these patterns, so a value one layer accepts is never refused by another.
"""

from __future__ import annotations

from enum import StrEnum


class Size(StrEnum):
    """Compartment size classes as carriers announce them."""

    S = "S"
    M = "M"
    L = "L"


#: Cabinet id: a level of every MQTT topic, so never '+', '#' or '/'.
CABINET_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
#: Carrier id: a level of the carrier's MQTT topics and of the broker ACL, so never '+', '#' or '/'.
CARRIER_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
#: A carrier's own courier id (staff number, login): may carry dots.
COURIER_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
#: Kiosk/panel id: the wrong-code limiter counts per panel.
PANEL_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
#: Waybill number as carriers print it.
WAYBILL_PATTERN = r"^[A-Za-z0-9-]{4,40}$"
#: Parcel id as `rules.new_id(rng, "p")` makes it: opaque, 64 random bits.
PARCEL_ID_PATTERN = r"^p-[0-9a-f]{16}$"
#: An offline courier pass's id, chosen by its carrier (docs/passes.md).
PASS_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"  # noqa: S105
#: A cabinet group a pass may name instead of cabinet ids.
GROUP_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
