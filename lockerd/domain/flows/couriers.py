"""Couriers (Art. 16): a carrier grants and revokes its couriers' PINs and offline passes; a courier
logs in at a panel."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from lockerd.domain.decision import Decision, DomainEvent, Record
from lockerd.domain.errors import ErrorCode
from lockerd.domain.flows.core import CabinetCore, courier_actor, refuse
from lockerd.domain.ids import COURIER_PATTERN
from lockerd.domain.model import (
    Courier,
    RevokedPass,
    SetCourier,
    SetRevokedPass,
    courier_key,
    pass_key,
)
from lockerd.domain.pins import MIN_SUPPLIED_ITERATIONS, hash_pin, pin_hash_is_valid, pin_is_acceptable
from lockerd.domain.requests import CourierAuth
from lockerd.domain.timefmt import format_ts

_COURIER_ID = re.compile(COURIER_PATTERN)


class CourierFlow(CabinetCore):
    """Grant, revoke and log in; every other courier command re-checks the grant (`_authenticate`)."""

    def grant_courier(self, carrier: str, courier_id: str, expires: datetime, *,
                      pin: str | None = None, pin_hash: str | None = None) -> Decision:
        """A carrier grants (or re-grants) one of its couriers a PIN valid until `expires`."""
        now = self.now()
        actor = f"carrier:{carrier}"
        body: dict[str, Any] = {"carrier": carrier, "courier_id": courier_id,
                                "expires": format_ts(expires) if expires.tzinfo else None}
        kind = "courier.grant"
        if carrier not in self.spec.carriers:
            return refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        if not _COURIER_ID.match(courier_id):
            body["courier_id"] = "<invalid>"
            return refuse(kind, actor, ErrorCode.BAD_REQUEST,
                          "courier_id: 1-64 letters, digits, '.', '_' or '-'", body)
        if expires.tzinfo is None or expires <= now:
            return refuse(kind, actor, ErrorCode.INVALID_EXPIRY, "expiry must be in the future", body)
        if (pin is None) == (pin_hash is None):
            return refuse(kind, actor, ErrorCode.BAD_PIN_HASH, "give exactly one of pin, pin_hash",
                          body)
        if pin is not None:
            if not pin_is_acceptable(pin):
                return refuse(kind, actor, ErrorCode.WEAK_PIN,
                              "PIN must be 6-12 digits, not repeated or sequential", body)
            salt = self._rng.getrandbits(128).to_bytes(16, "big")
            encoded = hash_pin(pin, salt, self.spec.policy.pin_hash_iterations)
        else:
            assert pin_hash is not None
            if not pin_hash_is_valid(pin_hash, MIN_SUPPLIED_ITERATIONS):
                return refuse(kind, actor, ErrorCode.BAD_PIN_HASH,
                              "pin_hash must be $pbkdf2-sha256$i=<iterations>$<salt>$<hash> "
                              f"with at least {MIN_SUPPLIED_ITERATIONS} iterations", body)
            encoded = pin_hash
        courier = Courier(carrier=carrier, courier_id=courier_id, pin_hash=encoded, expires=expires,
                          granted_at=now)
        event = DomainEvent(carrier, "courier.granted",
                            {"courier_id": courier_id, "expires": format_ts(expires)})
        return Decision(Record(kind, actor, body), changes=(SetCourier(value=courier),),
                        events=(event,), result={"courier_id": courier_id,
                                                 "expires": format_ts(expires)})

    def revoke_courier(self, carrier: str, courier_id: str) -> Decision:
        """Revocation takes effect on the courier's next command (every command re-checks)."""
        now = self.now()
        actor = f"carrier:{carrier}"
        body: dict[str, Any] = {"carrier": carrier, "courier_id": courier_id}
        kind = "courier.revoke"
        if carrier not in self.spec.carriers:
            return refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        courier = self.state.couriers.get(courier_key(carrier, courier_id))
        if courier is None:
            return refuse(kind, actor, ErrorCode.UNKNOWN_COURIER, "no such courier", body)
        if courier.revoked_at is not None:
            return Decision(Record(kind, actor, {**body, "already": True}),
                            result={"courier_id": courier_id, "revoked_at": format_ts(courier.revoked_at)})
        revoked = courier.model_copy(update={"revoked_at": now})
        event = DomainEvent(carrier, "courier.revoked",
                            {"courier_id": courier_id, "revoked_at": format_ts(now)})
        return Decision(Record(kind, actor, body), changes=(SetCourier(value=revoked),),
                        events=(event,), result={"courier_id": courier_id, "revoked_at": format_ts(now)})

    def courier_login(self, auth: CourierAuth, panel: str) -> Decision:
        """Check a courier's credentials at a panel; the result lists its work at this cabinet."""
        kind = "courier.login"
        actor = courier_actor(auth.carrier, auth.courier_id)
        body: dict[str, Any] = {"panel": panel}
        courier, refusal = self._authenticate(kind, actor, auth, panel, body)
        if refusal is not None:
            return refusal
        assert courier is not None
        return Decision(Record(kind, actor, body), changes=self._limiter_success(panel),
                        result={"carrier": auth.carrier, "courier_id": auth.courier_id,
                                "expires": format_ts(courier.expires), **self.worklist(auth.carrier)})


    def revoke_passes(self, carrier: str, passes: Sequence[tuple[str, datetime]]) -> Decision:
        """A carrier's revocation list: each `(pass_id, expires)` is refused from now until the
        pass would have expired anyway; revocations past that are forgotten (state stays small)."""
        now = self.now()
        actor = f"carrier:{carrier}"
        kind = "courier.revoke_pass"
        body: dict[str, Any] = {"carrier": carrier, "pass_ids": [p for p, _ in passes]}
        if carrier not in self.spec.carriers:
            return refuse(kind, actor, ErrorCode.UNKNOWN_CARRIER, "carrier not authorised here", body)
        changes: list[SetRevokedPass] = [SetRevokedPass(key=key, value=None)
                                         for key, r in self.state.revoked_passes.items()
                                         if r.until <= now]
        added = already = 0
        for pass_id, expires in passes:
            key = pass_key(carrier, pass_id)
            if key in self.state.revoked_passes or expires <= now:
                already += 1  # already refused, or expired: nothing left to revoke
                continue
            added += 1
            changes.append(SetRevokedPass(key=key, value=RevokedPass(
                carrier=carrier, pass_id=pass_id, until=expires, revoked_at=now)))
        result = {"revoked": added, "unchanged": already, "revoked_at": format_ts(now)}
        return Decision(Record(kind, actor, {**body, "revoked": added, "unchanged": already}),
                        changes=tuple(changes), result=result)

    def pass_refused(self, kind: str, code: ErrorCode, panel: str, pass_id: str | None,
                     carrier: str | None) -> Decision:
        """Record a pass the edge refused before the domain could read it (malformed, bad
        signature, no key for its carrier): every refusal at a panel is in the chain."""
        body: dict[str, Any] = {"panel": panel, "pass_id": pass_id, "carrier": carrier}
        return refuse(kind, f"panel:{panel}", code, "courier pass refused", body)
