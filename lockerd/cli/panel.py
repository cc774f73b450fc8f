"""`lockerctl panel …`: the customer flows for kiosks and tests (login, deliver, pickup, refuse,
dropoff, collect, return); every output masks personal data.

A door operation that did not happen (jammed, rolled back …) is a refusal: exit 1 with its code,
and what the daemon knows of it (which door, which failure) printed first.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockerd.api.client import ApiReplyError
from lockerd.cli.output import emit_json, key_values
from lockerd.privacy import mask_record, mask_secret

if TYPE_CHECKING:
    from lockerd.cli.lockerctl import Ctx

EXIT_OK = 0


def _pin(args: argparse.Namespace) -> str:
    """The PIN from --pin-env (never from the command line: it would show in `ps`)."""
    value = os.environ.get(args.pin_env, "")
    if not value:
        raise SystemExit(f"lockerctl: set the courier PIN in ${args.pin_env}")
    return value


def _courier(args: argparse.Namespace) -> dict[str, Any]:
    """Carrier, courier and PIN, or an offline pass (`--pass FILE`, `-` for stdin: a token on
    the command line would show in `ps`)."""
    if args.pass_file is not None:
        text = sys.stdin.read() if args.pass_file == "-" else Path(args.pass_file).read_text()  # noqa: S105
        return {"panel": args.panel, "pass": text.strip()}
    if args.carrier is None or args.courier is None:
        raise SystemExit("lockerctl: give --carrier and --courier (with the PIN), or --pass")
    return {"panel": args.panel, "carrier": args.carrier, "courier_id": args.courier,
            "pin": _pin(args)}


def _call(ctx: Ctx, method: str, params: dict[str, Any]) -> Any:
    """Call a panel method; a refusal that carries a result (a door failure) shows it, masked,
    before the refusal itself ends the command with exit 1."""
    try:
        return ctx.call(method, params)
    except ApiReplyError as exc:
        result = exc.reply.get("result")
        if isinstance(result, dict) and not ctx.json:
            _show(ctx, result)
        raise


def _show(ctx: Ctx, result: Any) -> int:
    masked = mask_record(result) if isinstance(result, dict) else result
    if ctx.json:
        emit_json(masked)
        return EXIT_OK
    if isinstance(masked, dict):
        rows = [(k, v if not isinstance(v, (dict, list)) else str(v)) for k, v in masked.items()]
        print(key_values(rows))
    else:
        print(masked)
    return EXIT_OK


def cmd_login(ctx: Ctx) -> int:
    """Check a courier; lists what it should collect and return here."""
    return _show(ctx, _call(ctx, "courier.login", _courier(ctx.args)))


def cmd_deliver(ctx: Ctx) -> int:
    """Deposit one parcel."""
    a = ctx.args
    parcel: dict[str, Any] = {"waybill": a.waybill, "size": a.size, "consent": a.consent,
                              "sender_chose_locker": a.sender_chose_locker, "damaged": a.damaged,
                              "fresh": a.fresh, "valuable": a.valuable, "agreement": a.agreement}
    if a.declared_weight is not None:
        parcel["declared_weight_g"] = a.declared_weight
    if a.measured_weight is not None:
        parcel["measured_weight_g"] = a.measured_weight
    return _show(ctx, _call(ctx, "panel.deliver", {**_courier(a), "parcel": parcel}))


def cmd_pickup(ctx: Ctx) -> int:
    """Open with the recipient's code (read from --code-env, never echoed)."""
    code = os.environ.get(ctx.args.code_env, "")
    params: dict[str, Any] = {"panel": ctx.args.panel, "code": code}
    if ctx.args.relation:
        params["relation"] = ctx.args.relation
    result = _call(ctx, "panel.pickup", params)
    if not ctx.json:
        print(f"code {mask_secret(code)}")
    return _show(ctx, result)


def cmd_refuse(ctx: Ctx) -> int:
    """Declare a refusal while the pickup door is open (Art. 26)."""
    a = ctx.args
    return _show(ctx, ctx.call("panel.refuse", {"panel": a.panel, "compartment": a.compartment,
                                                "reason": a.reason}))


def cmd_dropoff(ctx: Ctx) -> int:
    """A sender's drop-off (needs intake open, and the sender's ID card on the reader, or on a
    cabinet without one the carrier-signed real-name token in --verification-ref; Art. 18)."""
    a = ctx.args
    req: dict[str, Any] = {"carrier": a.carrier, "size": a.size, "verification_ref": a.verification_ref,
                           "declared_contents": a.contents, "ack_insured_value": a.ack_insured_value,
                           "ack_prohibited_items": a.ack_prohibited_items}
    if a.waybill:
        req["waybill"] = a.waybill
    return _show(ctx, _call(ctx, "panel.dropoff", {"panel": a.panel, "dropoff": req}))


def cmd_collect(ctx: Ctx) -> int:
    """Courier collects a drop-off; `--verdict` declares accept/reject on an open door."""
    a = ctx.args
    if a.verdict is not None:
        return _show(ctx, ctx.call("panel.collect_verdict", {
            "panel": a.panel, "compartment": a.compartment, "accept": a.verdict == "accept",
            "reason": a.reason}))
    return _show(ctx, _call(ctx, "panel.collect", {**_courier(a), "parcel_id": a.parcel_id}))


def cmd_return(ctx: Ctx) -> int:
    """Courier takes back a refused, overdue or recalled parcel."""
    return _show(ctx, _call(ctx, "panel.return", {**_courier(ctx.args), "parcel_id": ctx.args.parcel_id}))


def _courier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--carrier")
    p.add_argument("--courier", help="courier id")
    p.add_argument("--pass", dest="pass_file", metavar="FILE",
                   help="log in with an offline courier pass read from FILE ('-': stdin)")
    p.add_argument("--pin-env", default="LOCKER_PIN", help="environment variable holding the PIN")


def add_panel_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Add `panel` with its subcommands to lockerctl's parser."""
    panel = subparsers.add_parser("panel", parents=[common_parent], help="customer flows (kiosk)")
    sub = panel.add_subparsers(dest="panel_command", required=True, metavar="FLOW")

    def add(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, parents=[common_parent], help=help_)
        p.add_argument("--panel", default="kiosk-1", help="panel id")
        p.set_defaults(func=func)
        return p

    p = add("login", cmd_login, "courier login and work list")
    _courier_args(p)
    p = add("deliver", cmd_deliver, "deposit a parcel")
    _courier_args(p)
    p.add_argument("--waybill", required=True)
    p.add_argument("--size", required=True, choices=["S", "M", "L"])
    for flag in ("consent", "sender-chose-locker", "damaged", "fresh", "valuable", "agreement"):
        p.add_argument(f"--{flag}", action="store_true")
    p.add_argument("--declared-weight", type=int)
    p.add_argument("--measured-weight", type=int)
    p = add("pickup", cmd_pickup, "open with a pickup code (ID-checked parcels: card on the reader)")
    p.add_argument("--code-env", default="LOCKER_CODE", help="environment variable holding the code")
    p.add_argument("--relation",
                   choices=["self", "family", "colleague", "property_management", "other"],
                   help="ID-checked parcels: whose card is on the reader (default: the recipient)")
    p = add("refuse", cmd_refuse, "refuse the parcel at the open door (Art. 26)")
    p.add_argument("compartment", type=int)
    p.add_argument("--reason", required=True,
                   choices=["delayed", "damaged", "short", "wrong_item", "other"])
    p = add("dropoff", cmd_dropoff, "drop a parcel off (sender)")
    p.add_argument("--carrier", required=True)
    p.add_argument("--size", required=True, choices=["S", "M", "L"])
    p.add_argument("--waybill")
    p.add_argument("--verification-ref", default="",
                   help="cabinet without a reader: the carrier-signed real-name token (QR code); "
                        "with a reader the card on it is checked instead")
    p.add_argument("--contents", required=True)
    p.add_argument("--ack-insured-value", action="store_true")
    p.add_argument("--ack-prohibited-items", action="store_true")
    p = add("collect", cmd_collect, "collect a drop-off, or declare the verdict")
    _courier_args(p)
    p.add_argument("--parcel-id")
    p.add_argument("--verdict", choices=["accept", "reject"])
    p.add_argument("--compartment", type=int)
    p.add_argument("--reason", choices=["mismatch", "prohibited", "packaging", "other"])
    p = add("return", cmd_return, "take back a refused/overdue parcel")
    _courier_args(p)
    p.add_argument("--parcel-id", required=True)
