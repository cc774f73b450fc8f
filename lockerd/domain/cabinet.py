"""The cabinet as a pure state machine: each command returns a Decision; only `apply` changes state.

Use: decide (a method below), record the decision in the operation log, `apply` it, then move the
door; the door's outcome is fed back as the matching confirm/`door_failed` command. Decisions are
made against the current state, so the caller serialises decide-record-apply (one lock).

`Cabinet` is a facade: each flow of the parcel lifecycle is its own module in `lockerd.domain.flows`
(couriers, delivery, pickup/refusal, drop-off/collection, returns/overdue, door failures and
maintenance), all over the shared state and checks of `flows.core`.
"""

from __future__ import annotations

from lockerd.domain.flows.core import Clock, CodeDigest, courier_actor, initial_state, panel_actor
from lockerd.domain.flows.couriers import CourierFlow
from lockerd.domain.flows.delivery import DeliveryFlow
from lockerd.domain.flows.dropoff import DropoffFlow
from lockerd.domain.flows.maintenance import MaintenanceFlow
from lockerd.domain.flows.pickup import PickupFlow
from lockerd.domain.flows.returns import ReturnFlow
from lockerd.domain.flows.storage import StorageFlow

__all__ = ["Cabinet", "Clock", "CodeDigest", "courier_actor", "initial_state", "panel_actor"]


class Cabinet(CourierFlow, DeliveryFlow, PickupFlow, DropoffFlow, ReturnFlow, StorageFlow,
              MaintenanceFlow):
    """Pure decisions over a CabinetState; clock and random source are injected.

    Persistence (`to_dict`, `from_dict`, `replay`, `apply`) and queries (`now`, `live_parcels`,
    `free_counts`, `blocked`, `worklist`) come from `flows.core.CabinetCore`; the commands from
    the flow modules: `grant_courier`, `revoke_courier`, `courier_login` (couriers);
    `expect_parcel`, `begin_deposit`, `confirm_deposit` (delivery); `begin_pickup`,
    `confirm_pickup`, `confirm_refusal` (pickup); `begin_dropoff`, `confirm_dropoff`,
    `begin_collect`, `confirm_collect`, `confirm_retrieval` (dropoff); `sweep_overdue`,
    `recall_parcel`, `begin_return`, `confirm_return` (returns); `notice_parcel`,
    `extend_parcel` (storage); `door_failed`, `hold_unconfirmed`, `redirect_after_jam`, `block`,
    `unblock`, `clear` (maintenance); `blocks` (the blocked set with why, since when and by whom).

    """
