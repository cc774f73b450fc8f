"""Retention: destroy expired personal fields and rows per record class, recording each purge."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lockerd.config import Oplog as OplogConfig
from lockerd.oplog.canonical import format_ts
from lockerd.oplog.records import PARCEL_COLUMN_NAMES
from lockerd.oplog.store import OpLog
from lockerd.privacy import personal

log = logging.getLogger(__name__)

# The parcels columns the privacy registry calls personal: nulled once the parcel's personal
# retention has passed, while the row (kind, times, status) stays for the statistics.
PERSONAL_PARCEL_COLUMNS = tuple(c for c in PARCEL_COLUMN_NAMES if personal(c) is not None)


async def purge(store: OpLog, policy: OplogConfig, *, now: datetime | None = None,
                actor: str = "lockerd:retention") -> dict[str, int]:
    """Run every retention class once; returns {class: rows destroyed}.

    Each non-empty class is one transaction with its destruction record (Art. 26): a crash
    between classes leaves the earlier ones done and recorded, the rest for the next run.
    """
    at = now or store.now()

    def cutoff(days: int) -> str:
        return format_ts(at - timedelta(days=days))

    done: dict[str, int] = {}
    done["parcel_personal"] = await store.destroy(
        "parcel_personal", "parcels",
        "closed_at IS NOT NULL AND closed_at < ? AND purged_at IS NULL",
        (cutoff(policy.parcel_personal_days),), range_column="closed_at",
        null_columns=PERSONAL_PARCEL_COLUMNS, set_values={"purged_at": format_ts(at)},
        actor=actor)
    done["parcels"] = await store.destroy(
        "parcels", "parcels", "closed_at IS NOT NULL AND closed_at < ?",
        (cutoff(policy.parcel_days),), range_column="closed_at", actor=actor)
    courier_cut = cutoff(policy.courier_days)
    done["couriers"] = await store.destroy(
        "couriers", "couriers", "(revoked = 1 AND revoked_at < ?) OR expires < ?",
        (courier_cut, courier_cut), range_column="granted_at", actor=actor)
    done["identity_checks"] = await store.destroy(
        "identity_checks", "identity_checks", "checked_at < ?",
        (cutoff(policy.identity_check_days),), range_column="checked_at", actor=actor)
    done["outbox_sent"] = await store.outbox_prune(at - timedelta(days=policy.outbox_sent_days),
                                                   actor=actor)
    done["command_ids"] = await store.commands_prune(at - timedelta(days=policy.command_days),
                                                     actor=actor)
    total = sum(done.values())
    if total:
        log.info("retention purge destroyed %d records: %s", total,
                 ", ".join(f"{k}={v}" for k, v in done.items() if v))
    return done
