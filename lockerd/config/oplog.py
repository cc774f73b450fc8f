"""[oplog]: the operation log's file and retention per record class (Art. 26)."""

from __future__ import annotations

from pydantic import Field, model_validator

from lockerd.config.base import Strict


class Oplog(Strict):
    """Operation log: file name and retention per record class (Art. 26; docs/oplog.md)."""

    db_name: str = Field(default="oplog.db", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                         description="Database file name inside paths.state_dir.")
    readers: int = Field(default=2, ge=1, le=8,
                         description="Read-only connections for views, exports and the outbox.")
    purge_hour_utc: int = Field(default=19, ge=0, le=23,
                                description="UTC hour of the daily retention purge (19 = 03:00 "
                                            "Beijing time).")
    parcel_personal_days: int = Field(
        default=30, ge=1, le=3650,
        description="Days after a parcel is closed until its personal fields (waybill, phone, "
                    "verification ref, contents) are destroyed.")
    parcel_days: int = Field(default=365, ge=1, le=3650,
                             description="Days after a parcel is closed until its row is deleted "
                                         "(the chain keeps the non-personal operations).")
    courier_days: int = Field(default=90, ge=1, le=3650,
                              description="Days after a courier grant expired or was revoked "
                                          "until it is deleted.")
    identity_check_days: int = Field(
        default=365, ge=30, le=3650,
        description="Days identity-check results (masked; Art. 9 para. 2) are kept after the "
                    "check, then destroyed with a destruction record.")
    outbox_sent_days: int = Field(default=7, ge=1, le=365,
                                  description="Days published outbox messages are kept.")
    command_days: int = Field(default=7, ge=7, le=365,
                              description="Days carrier command ids are remembered (>= 7: "
                                          "docs/mqtt.md).")
    integrity_check_h: float = Field(default=24.0, ge=0.1, le=24 * 30,
                                     description="Hours between integrity checks of the log file "
                                                 "(also at every start); a damaged page makes "
                                                 "the cabinet degraded: oplog_corrupt.")
    max_export_rows: int = Field(
        default=500000, ge=100, le=10_000_000,
        description="Most lines one export may cover (a sanity cap: an export is read in pages, "
                    "so memory does not grow with it; 500000 holds five months of a busy "
                    "cabinet's million operations a year).")
    export_page_kib: int = Field(default=256, ge=1, le=4096,
                                 description="Most KiB of JSON lines in one log.export page.")
    max_open_exports: int = Field(default=4, ge=1, le=64,
                                  description="Exports open at once (being read page by page).")
    export_idle_s: float = Field(default=300.0, ge=1, le=3600,
                                 description="An open export without a page request for this "
                                             "long is dropped (its cursor is refused).")
    slow_commit_s: float = Field(
        default=2.0, gt=0, le=600,
        description="A commit taking longer than this makes the cabinet degraded (a worn SD "
                    "card or a full disk), until commits are quick again for a minute.")
    anchor_every_ops: int = Field(
        default=50, ge=1, le=10000,
        description="Sign and publish the chain head (an anchor, docs/oplog.md) after this many "
                    "operations.")
    anchor_every_min: float = Field(
        default=10.0, ge=0.05, le=1440,
        description="... and at least this often (minutes), even when nothing happened.")

    @model_validator(mode="after")
    def _personal_first(self) -> Oplog:
        if self.parcel_personal_days > self.parcel_days:
            raise ValueError("parcel_personal_days must not exceed parcel_days")
        return self
