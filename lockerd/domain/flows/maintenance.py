"""Door failures and maintenance: a door that failed mid-operation, blocking, unblocking and clearing."""

from __future__ import annotations

from lockerd.domain.decision import Decision, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import CabinetCore, refuse
from lockerd.domain.model import Change, CompartmentState, ParcelStatus, PendingOp, SetCompartment, SetParcel
from lockerd.domain.requests import DoorFailure


class MaintenanceFlow(CabinetCore):
    """Roll back or block after a door failure; staff block, unblock and clear compartments."""

    def door_failed(self, compartment_id: int, failure: DoorFailure) -> Decision:
        """A begun operation whose door never opened, jammed or never closed.

        Deposits and drop-offs are rolled back (the parcel never counted as stored). For pickup,
        return and collection the parcel keeps its status. A jammed door or one left open blocks
        the compartment so no customer flow uses it until staff have looked.
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
        block = failure not in (DoorFailure.NOT_OPENED, DoorFailure.ITEM_STILL_INSIDE)
        blocked_reason = {DoorFailure.JAMMED: "door_jammed",
                          DoorFailure.NOT_CLOSED: "door_left_open",
                          DoorFailure.ITEM_NOT_SEEN: "occupancy_mismatch"}.get(failure)
        body = {"failure": failure.value, "blocked": block}
        changes: tuple[Change, ...]
        if pending.op in (PendingOp.DEPOSIT, PendingOp.DROPOFF):
            gone = parcel.model_copy(update={"status": ParcelStatus.ROLLED_BACK, "closed_at": now,
                                             "reason": failure.value})
            after = comp.model_copy(update={
                "state": CompartmentState.BLOCKED if block else CompartmentState.FREE,
                "parcel_id": None, "pending": None, "blocked_reason": blocked_reason})
            changes = (SetParcel(value=gone), SetCompartment(value=after))
            result = {"parcel_id": parcel.id, "status": "rolled_back", "blocked": block}
        else:
            after = comp.model_copy(update={
                "state": CompartmentState.BLOCKED if block else CompartmentState.OCCUPIED,
                "pending": None, "blocked_reason": blocked_reason})
            changes = (SetCompartment(value=after),)
            result = {"parcel_id": parcel.id, "status": parcel.status.value, "blocked": block}
        return Decision(Record(kind, pending.actor, body, comp.id, parcel.id), changes=changes,
                        notify_operator=(f"compartment {comp.id} blocked: {blocked_reason}"
                                         if block else None),
                        result=result)

    def block(self, compartment_id: int, reason: str, actor: str) -> Decision:
        """Take a compartment out of customer use (fault, maintenance, forced door)."""
        kind = "compartment.block"
        body = {"reason": reason[:100]}
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", body)
        if comp.state not in (CompartmentState.FREE, CompartmentState.OCCUPIED, CompartmentState.BLOCKED):
            return refuse(kind, actor, ErrorCode.BAD_STATE, "a door operation is under way", body,
                          comp.id)
        after = comp.model_copy(update={"state": CompartmentState.BLOCKED, "blocked_reason": reason[:100]})
        return Decision(Record(kind, actor, body, comp.id, comp.parcel_id),
                        changes=(SetCompartment(value=after),), result={"compartment": comp.id})

    def unblock(self, compartment_id: int, actor: str) -> Decision:
        """Return a blocked compartment to service (occupied if a parcel is still inside)."""
        kind = "compartment.unblock"
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", {})
        if comp.state is not CompartmentState.BLOCKED:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "compartment is not blocked", {}, comp.id)
        state = CompartmentState.OCCUPIED if comp.parcel_id else CompartmentState.FREE
        after = comp.model_copy(update={"state": state, "blocked_reason": None})
        return Decision(Record(kind, actor, {}, comp.id, comp.parcel_id),
                        changes=(SetCompartment(value=after),),
                        result={"compartment": comp.id, "state": state.value})

    def clear(self, compartment_id: int, actor: str) -> Decision:
        """Staff took the parcel out (e.g. a rejected drop-off): removed, compartment emptied."""
        kind = "compartment.clear"
        now = self.now()
        comp = self.state.compartments.get(compartment_id)
        if comp is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_COMPARTMENT, "no such compartment", {})
        if comp.pending is not None or comp.parcel_id is None:
            return refuse(kind, actor, ErrorCode.BAD_STATE, "nothing to clear", {}, comp.id)
        parcel = self.state.parcels[comp.parcel_id]
        removed = parcel.model_copy(update={"status": ParcelStatus.REMOVED, "code": None,
                                            "closed_at": now})
        after = comp.model_copy(update={
            "parcel_id": None,
            "state": CompartmentState.BLOCKED if comp.state is CompartmentState.BLOCKED
            else CompartmentState.FREE})
        return Decision(Record(kind, actor, {"from_status": parcel.status.value}, comp.id, parcel.id),
                        changes=(SetParcel(value=removed), SetCompartment(value=after)),
                        notify_operator=f"parcel removed from compartment {comp.id} by staff",
                        result={"parcel_id": parcel.id, "from_status": parcel.status.value})

