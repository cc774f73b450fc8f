"""Pure domain of the cabinet: parcel lifecycle and the regulation's rules, no I/O, no asyncio."""

from lockerd.domain.cabinet import Cabinet, Clock, courier_actor, initial_state, panel_actor
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.model import (
    CHANGES,
    CODE_STATUSES,
    LIVE_STATUSES,
    CabinetState,
    Change,
    Compartment,
    CompartmentState,
    Courier,
    Expectation,
    Limiter,
    Parcel,
    ParcelKind,
    ParcelStatus,
    Pending,
    PendingOp,
)
from lockerd.domain.requests import (
    CourierAuth,
    Delivery,
    DoorFailure,
    Dropoff,
    Expect,
    RefusalReason,
    RejectReason,
)
from lockerd.domain.spec import CabinetSpec, Policy, Rng

__all__ = [
    "CHANGES", "CODE_STATUSES", "LIVE_STATUSES", "Cabinet", "CabinetSpec", "CabinetState", "Change",
    "Clock", "Compartment", "CompartmentState", "Courier", "CourierAuth", "Decision", "Delivery",
    "DomainEvent", "DoorFailure", "Dropoff", "ErrorCode", "Expect", "Expectation", "Limiter", "Parcel",
    "ParcelKind",
    "ParcelStatus", "Pending", "PendingOp", "Policy", "Record", "RefusalReason", "RejectReason", "Rng",
    "courier_actor", "initial_state", "panel_actor",
]
