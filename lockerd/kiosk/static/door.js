// The door screen every operation shares: which door, what to do at it, and how it ended.

import { post } from "./api.js";
import { errorText, t } from "./i18n.js";
import { maskedResult } from "./idcard.js";
import { button, h } from "./ui.js";

const FINAL = ["done", "rolled_back", "failed"];
const AUTO_HOME_MS = 8000;

export function onDoorEvent(app, event) {
  const op = app.state.op;
  if (event.compartment) op.compartment = event.compartment;
  if (event.event === "jammed") op.jammedDoor = event.compartment;
  if (event.event === "left_open") op.prompt = true;
  else if (["closed", ...FINAL].includes(event.event)) op.prompt = false;
  showPrompt(op);
  if (FINAL.includes(event.event) && ["pickup", "dropoff"].includes(op.kind)) {
    const id = op.id;
    setTimeout(() => { if (app.state.op?.id === id && app.screen === doorScreen) app.home(); }, AUTO_HOME_MS);
  }
  if (app.screen === doorScreen) app.render();
}

// The door-left-open prompt (the first level of the escalation) over whatever screen is shown.
export function showPrompt(op) {
  const prompt = document.getElementById("prompt");
  prompt.hidden = !op?.prompt;
  if (op?.prompt) prompt.textContent = t("left_open", { n: op.compartment });
}

export function doorScreen(app) {
  const op = app.state.op;
  const seen = op.events.map((e) => e.event);
  const last = op.events.findLast((e) => e.event !== "left_open");
  const phase = last?.event ?? "pulse_sent";
  const n = op.compartment;
  const out = [h("h2", { id: "door-title" }, t("door", { n })),
               h("div", { class: "door", id: "door-number", "aria-labelledby": "door-title" }, String(n)),
               maskedResult(op.identity)].filter((el) => el !== null);
  if (seen.includes("offered")) {
    out.push(h("p", { class: "notice warn", id: "offered" },
      t("jammed", { n: op.jammedDoor }), " ", t("offered", { n })));
  } else if (phase === "jammed") {
    out.push(h("p", { class: "notice warn", id: "jammed" }, t("jammed", { n })));
  }
  const status = h("p", { class: "big", id: "door-status", role: "status" });
  out.push(status);
  if (phase === "done") {
    status.textContent = doneText(op, last);
    out.push(...doneActions(app, op, last));
  } else if (phase === "rolled_back") {
    status.textContent = t("rolled_back", { why: t(`failure_${last.failure ?? "not_opened"}`) })
      + (last.blocked ? ` ${t("staff")}` : "") + (last.error ? ` ${errorText(last.error)}` : "");
    out.push(...endActions(app, op));
  } else if (phase === "failed") {
    status.textContent = t("failed");
    out.push(...endActions(app, op));
  } else if (phase === "closed") {
    status.textContent = t("closed");
  } else if (phase === "opened") {
    out.push(...openScreen(app, op, status));
  } else if (phase !== "jammed") {
    status.textContent = t("opening", { n });
  }
  return out;
}

function openScreen(app, op, status) {
  const n = op.compartment;
  const out = [];
  if (op.kind === "pickup") {
    if (op.declared) {
      status.textContent = t("refuse_back", { n });
    } else if (op.choosing) {
      status.textContent = t("refuse_title");
      out.push(h("div", { class: "row", id: "refuse-reasons" },
        app.state.info.refusal_reasons.map((r) => button(t(`reason_${r}`), () => declare(app, "refuse", { op: op.id, reason: r }, r),
          { "data-reason": r }))),
        button(t("back"), () => { op.choosing = false; app.render(); }));
    } else {
      status.textContent = t("opened_pickup", { n });
      out.push(button(t("refuse_btn"), () => { op.choosing = true; app.render(); }, { class: "danger", id: "refuse" }));
    }
  } else if (op.kind === "collect") {
    if (op.declared) {
      status.textContent = op.declared === "accept" ? t("verdict_accept") : t("verdict_reject", { n });
    } else if (op.choosing) {
      status.textContent = t("reject_title");
      out.push(h("div", { class: "row", id: "reject-reasons" },
        app.state.info.reject_reasons.map((r) => button(t(`reject_${r}`),
          () => declare(app, "courier/verdict", { op: op.id, accept: false, reason: r }, r), { "data-reason": r }))),
        button(t("back"), () => { op.choosing = false; app.render(); }));
    } else {
      status.textContent = t("collect_open", { n, c: op.contents ?? "-" });
      out.push(h("div", { class: "row" },
        button(t("accept"), () => declare(app, "courier/verdict", { op: op.id, accept: true }, "accept"),
          { class: "primary", id: "accept" }),
        button(t("reject"), () => { op.choosing = true; app.render(); }, { class: "danger", id: "reject" })));
    }
  } else if (op.kind === "deliver") {
    status.textContent = t("put_in", { n });
  } else if (op.kind === "dropoff") {
    status.textContent = t("put_own", { n });
  } else {
    status.textContent = t("take_out", { n });
  }
  if (op.error) out.push(h("p", { class: "notice warn", role: "alert" }, errorText(op.error)));
  return out;
}

async function declare(app, path, body, declared) {
  const op = app.state.op;
  const reply = await post(path, body);
  op.choosing = false;
  if (reply.ok) {
    op.declared = declared;
    op.error = null;
  } else {
    op.error = reply.error.code;
  }
  app.render();
}

function doneText(op, done) {
  const n = op.compartment;
  switch (done.record) {
    case "pickup.confirm": return t("thanks");
    case "refuse.confirm": return t("refused_done");
    case "deliver.confirm": return t("stored", { n });
    case "dropoff.confirm": return t("sent", { n });
    case "collect.confirm": return done.status === "rejected" ? t("rejected") : t("collected");
    case "return.confirm": return t("returned");
    default: return t("thanks");
  }
}

function doneActions(app, op, done) {
  const out = [];
  if (done.record === "dropoff.confirm" && done.parcel_id) {
    out.push(h("p", { id: "parcel-ref" }, t("parcel_ref", { p: done.parcel_id })));
  }
  if (op.kind === "deliver") {
    out.push(h("div", { class: "row" },
      button(t("next_parcel"), () => app.courierNext(), { class: "primary", id: "next-parcel" }),
      button(t("worklist"), () => app.courierMenu(), { id: "to-menu" })));
    return out;
  }
  return [...out, ...endActions(app, op)];
}

function endActions(app, op) {
  if (app.state.courier) {
    return [button(t("worklist"), () => app.courierMenu(), { class: "primary", id: "to-menu" })];
  }
  return [button(t("home"), () => app.home(), { class: "primary", id: "to-home" })];
}
