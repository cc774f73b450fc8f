"""Door failures and maintenance: a failed door, a jammed deposit moved on, blocking, unblocking, clearing.

The domain is the one owner of "blocked": the door controller reports what it saw (jammed,
forced, left open) and reads the blocked set back; technicians block, unblock and clear here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lockerd.domain import rules
from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import CabinetCore, refuse
from lockerd.domain.model import (
    LIVE_STATUSES,
    Change,
    Compartment,
    CompartmentState,
    ParcelStatus,
    PendingOp,
    SetCompartment,
    SetParcel,
    claimable_by_code,
)
from lockerd.domain.requests import DoorFailure
from lockerd.domain.timefmt import format_ts

#: Who blocks a compartment after a door failure: the door controller saw it.
DOORS_ACTOR = "doors"
#: The block of a door whose board lost its reply and could not be read: lifted by the door
#: controller's next reading of it closed (ParcelService.door_state_known), or by staff.
DOOR_STATE_UNKNOWN = "door_state_unknown"
#: The hold of a deposit or drop-off a restart left open whose door reads closed on an item the
#: occupancy sensor sees (`hold_unconfirmed`): the parcel stays inside as `depositing`, without a
#: code; staff clear it (its carrier gets `parcel.removed_by_staff`).
DEPOSIT_UNCONFIRMED = "deposit_unconfirmed"
#: The record kinds of that hold.
HELD_KINDS = frozenset({"deposit.held", "dropoff.held"})
#: Longest blocked reason kept (staff text is cut, never refused for its length).
REASON_MAX = 100

_BLOCK_REASONS = {DoorFailure.JAMMED: "door_jammed", DoorFailure.NOT_CLOSED: "door_left_open",
                  DoorFailure.ITEM_NOT_SEEN: "occupancy_mismatch",
                  DoorFailure.STATE_UNKNOWN: DOOR_STATE_UNKNOWN}
_FAILED_CODES = {DoorFailure.JAMMED: ErrorCode.DOOR_JAMMED,
                 DoorFailure.NOT_OPENED: ErrorCode.DOOR_NOT_OPENED,
                 DoorFailure.NOT_CLOSED: ErrorCode.DOOR_NOT_CLOSED,
                 DoorFailure.ITEM_STILL_INSIDE: ErrorCode.ITEM_STILL_INSIDE,
                 DoorFailure.ITEM_NOT_SEEN: ErrorCode.ROLLED_BACK,
                 DoorFailure.STATE_UNKNOWN: ErrorCode.DOOR_STATE_UNKNOWN}
_FAILED_MESSAGES = {
    ErrorCode.DOOR_JAMMED: "the door did not open (jammed); the compartment is out of service",
    ErrorCode.DOOR_NOT_OPENED: "the door did not open; nothing changed",
    ErrorCode.DOOR_NOT_CLOSED: "the door was not closed in time; staff are notified",
    ErrorCode.ITEM_STILL_INSIDE: "the parcel is still inside; nothing was taken",
    ErrorCode.ROLLED_BACK: "the door operation did not complete; the parcel was not stored",
    ErrorCode.DOOR_STATE_UNKNOWN: "the board did not confirm and the door cannot be read; the "
                                  "compartment is held until its door state is known",
}


def blocked_as(comp: Compartment, reason: str, by: str, now: datetime, **update: Any) -> Compartment:
    """The compartment out of customer use: why, since when, by whom (a block already in place
    keeps its first time and author, so the incident's age stays honest)."""
    if comp.state is CompartmentState.BLOCKED and comp.blocked_since is not None:
        since, by = comp.blocked_since, comp.blocked_by or by
    else:
        since = now
    return comp.model_copy(update={"state": CompartmentState.BLOCKED, "pending": None,
                                   "blocked_reason": reason[:REASON_MAX], "blocked_since": since,
                                   "blocked_by": by, **update})


def released(comp: Compartment, parcel_id: str | None) -> Compartment:
    """Back in service: occupied while a parcel is inside, free otherwise."""
    return comp.model_copy(update={
        "state": CompartmentState.OCCUPIED if parcel_id else CompartmentState.FREE,
        "parcel_id": parcel_id, "pending": None, "blocked_reason": None, "blocked_since": None,
        "blocked_by": None})


class MaintenanceFlow(CabinetCore):
    """Roll back, move on or block after a door failure; staff block, unblock and clear."""

    def door_failed(self, compartment_id: int, failure: DoorFailure) -> Decision:
        """A begun operation whose door never opened, jammed or never closed.

        Deposits and drop-offs are rolled back (the parcel never counted as stored). For pickup,
        return, collection and retrieval the parcel keeps its status. A jammed door or one left
        open blocks the compartment so no customer flow uses it until staff have looked. The
        decision is accepted (its changes are recorded) but `failed` says the door operation did
        not happen, so no caller reports it as a success.
        """
        comp = self.state.compartments.get(compartment_id)
        op = comp.pending.op.value if comp is not None and comp.pending is not None else "open"
        kind = f"{op}.rollback"
        got = self._pending(kind, compartment_id, tuple(PendingOp))
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        now = self.now()
        # Nothing moved (not opened), or the parcel simply stayed (still inside): no block.
        # A deposit the sensor did not see may still be in there: staff must look.
        reason = _BLOCK_REASONS.get(failure)
        block = reason is not None
        body = {"failure": failure.value, "blocked": block}
        changes: tuple[Change, ...]
        rolled_back = pending.op in (PendingOp.DEPOSIT, PendingOp.DROPOFF)
        if rolled_back:
            gone = parcel.model_copy(update={"status": ParcelStatus.ROLLED_BACK, "closed_at": now,
                                             "reason": failure.value, "code": None})
            empty = comp.model_copy(update={"parcel_id": None, "pending": None})
            after = blocked_as(empty, reason, DOORS_ACTOR, now) if reason is not None \
                else released(empty, None)
            changes = (SetParcel(value=gone), SetCompartment(value=after))
            status = ParcelStatus.ROLLED_BACK.value
        else:
            after = blocked_as(comp, reason, DOORS_ACTOR, now) if reason is not None \
                else comp.model_copy(update={"state": CompartmentState.OCCUPIED, "pending": None})
            changes = (SetCompartment(value=after),)
            status = parcel.status.value
        failed = _FAILED_CODES[failure]
        if rolled_back and failed not in (ErrorCode.DOOR_JAMMED, ErrorCode.DOOR_STATE_UNKNOWN):
            failed = ErrorCode.ROLLED_BACK
        return Decision(Record(kind, pending.actor, body, comp.id, parcel.id), changes=changes,
                        failed=failed, message=_FAILED_MESSAGES[failed],
                        notify_operator=f"compartment {comp.id} blocked: {reason}" if block else None,
                        result={"parcel_id": parcel.id, "compartment": comp.id, "status": status,
                                "failure": failure.value, "blocked": block})

    def hold_unconfirmed(self, compartment_id: int) -> Decision:
        """A deposit or drop-off a restart left open, with no kept end, whose door reads closed
        and whose occupancy sensor sees an item: the parcel is physically inside, so it is not
        rolled back. It stays `depositing` (recorded as inside, no code, so never released to a
        recipient) behind a compartment blocked as `deposit_unconfirmed` until staff look:
        `clear` takes it out (`removed_by_staff`); `unblock` is refused while it is inside."""
        kind, got = self._open_deposit(compartment_id, "held")
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        after = blocked_as(comp, DEPOSIT_UNCONFIRMED, DOORS_ACTOR, self.now())
        return Decision(Record(kind, pending.actor, {"blocked_reason": DEPOSIT_UNCONFIRMED, "blocked": True},
                               comp.id, parcel.id),
                        changes=(SetCompartment(value=after),),
                        notify_operator=f"compartment {comp.id} blocked: {DEPOSIT_UNCONFIRMED}",
                        result={"parcel_id": parcel.id, "compartment": comp.id,
                                "status": parcel.status.value, "blocked": True,
                                "reason": DEPOSIT_UNCONFIRMED})

    def redirect_after_jam(self, compartment_id: int) -> Decision:
        """A deposit or drop-off whose door jammed moves on to another free compartment of a
        fitting size, in the same operation: the jammed one is blocked, the parcel (same id,
        still depositing) is reserved in the new one, whose door is to open next.

        Refused with `no_free_compartment` when none fits; the caller then rolls back.
        """
        kind, got = self._open_deposit(compartment_id, "redirect")
        if isinstance(got, Decision):
            return got
        comp, pending, parcel = got
        now = self.now()
        body: dict[str, Any] = {"failure": DoorFailure.JAMMED.value, "jammed_compartment": comp.id}
        new = rules.allocate((c for c in self.state.compartments.values() if c.id != comp.id),
                             parcel.size)
        if new is None:
            return refuse(kind, pending.actor, ErrorCode.NO_FREE_COMPARTMENT,
                          f"no other free compartment of size {parcel.size.value} or larger",
                          body, comp.id, parcel.id)
        jammed = blocked_as(comp.model_copy(update={"parcel_id": None}), "door_jammed",
                            DOORS_ACTOR, now)
        moved = parcel.model_copy(update={"compartment": new.id, "size": new.size})
        reserved = new.model_copy(update={"state": CompartmentState.RESERVED,
                                          "parcel_id": parcel.id,
                                          "pending": pending.model_copy(update={"since": now})})
        return Decision(Record(kind, pending.actor, body, new.id, parcel.id),
                        changes=(SetCompartment(value=jammed), SetParcel(value=moved),
                                 SetCompartment(value=reserved)),
                        open_door=new.id,
                        notify_operator=f"compartment {comp.id} blocked: door_jammed",
                        result={"parcel_id": parcel.id, "compartment": new.id,
                                "size": new.size.value, "jammed_compartment": comp.id})

    def block(self, compartment_id: int, reason: str, actor: str) -> Decision:
        """Take a compartment out of customer use (a door fact, maintenance); a parcel inside
        stays where it is. Refused while a door operation is under way."""
        kind = "compartment.block"
        body = {"reason": reason[:REASON_MAX]}
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", body)
        if comp.pending is not None:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "a door operation is under way", body,
                          comp.id)
        after = blocked_as(comp, reason, actor, self.now())
        return Decision(Record(kind, actor, body, comp.id, comp.parcel_id),
                        changes=(SetCompartment(value=after),),
                        result={"compartment": comp.id, "reason": after.blocked_reason,
                                "blocked_since": format_ts(after.blocked_since or self.now())})

    def unblock(self, compartment_id: int, actor: str, reason: str = "") -> Decision:
        """Return a repaired compartment to service. Refused while it holds a live parcel that
        its code cannot claim (a refused or collected-waiting parcel, a drop-off without a code):
        staff clear those instead, so nothing stays behind a door nobody can open."""
        kind = "compartment.unblock"
        body = {"reason": reason[:REASON_MAX]}
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", body)
        if comp.state is not CompartmentState.BLOCKED:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "compartment is not blocked", body,
                          comp.id)
        parcel = self.state.parcels.get(comp.parcel_id) if comp.parcel_id else None
        if parcel is not None and not claimable_by_code(parcel):
            return refuse(kind, actor, ErrorCode.HOLDS_PARCEL,
                          f"compartment holds a {parcel.status.value} parcel its code cannot "
                          "claim; clear it instead", body, comp.id, parcel.id,
                          result={"parcel_id": parcel.id, "status": parcel.status.value})
        after = released(comp, comp.parcel_id)
        return Decision(Record(kind, actor, {**body, "released": comp.blocked_reason}, comp.id,
                               comp.parcel_id),
                        changes=(SetCompartment(value=after),),
                        result={"compartment": comp.id, "state": after.state.value,
                                "released": comp.blocked_reason, "parcel_id": comp.parcel_id})

    def clear(self, compartment_id: int, actor: str, reason: str = "", *,
              keep_blocked: bool = False) -> Decision:
        """Staff took out what was inside: each live parcel becomes `removed_by_staff` (its carrier
        gets `parcel.removed_by_staff`); the compartment is free again, or stays (becomes)
        blocked when `keep_blocked`."""
        kind = "compartment.clear"
        now = self.now()
        body: dict[str, Any] = {"reason": reason[:REASON_MAX], "keep_blocked": keep_blocked}
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", body)
        if comp.pending is not None:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "a door operation is under way", body,
                          comp.id)
        inside = [p for p in self.state.parcels.values() if p.status in LIVE_STATUSES
                  and (p.id == comp.parcel_id or p.compartment == comp.id)]
        if not inside and (keep_blocked or comp.state is not CompartmentState.BLOCKED):
            return refuse(kind, actor, ErrorCode.BAD_STATE, "nothing to clear", body, comp.id)
        changes: list[Change] = []
        events: list[DomainEvent] = []
        for parcel in sorted(inside, key=lambda p: p.id):
            changes.append(SetParcel(value=parcel.model_copy(update={
                "status": ParcelStatus.REMOVED_BY_STAFF, "code": None, "closed_at": now,
                "reason": reason[:REASON_MAX] or None})))
            events.append(DomainEvent(parcel.carrier, "parcel.removed_by_staff", {
                "parcel_id": parcel.id, "kind": parcel.kind.value, "waybill": parcel.waybill,
                "compartment": comp.id, "from_status": parcel.status.value,
                "reason": reason[:REASON_MAX], "removed_at": format_ts(now),
                **self._deadline(parcel)}))
        empty = comp.model_copy(update={"parcel_id": None})
        after = blocked_as(empty, comp.blocked_reason or reason or "cleared", actor, now) \
            if keep_blocked else released(empty, None)
        changes.append(SetCompartment(value=after))
        removed = [p.id for p in inside]
        body.update(removed=len(removed), from_status=[p.status.value for p in inside])
        return Decision(Record(kind, actor, body, comp.id, removed[0] if removed else None),
                        changes=tuple(changes), events=tuple(events),
                        notify_operator=f"compartment {comp.id} cleared by staff "
                                        f"({len(removed)} parcel(s) removed)",
                        result={"compartment": comp.id, "removed": removed,
                                "state": after.state.value,
                                "released": None if keep_blocked else comp.blocked_reason,
                                "from_status": [p.status.value for p in inside]})
