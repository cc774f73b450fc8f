// The recipient's screens: the code on the keypad, the ID card (and a proxy's relation) for an
// ID-checked government document, the fee where one applies (Art. 25), then the door.

import { post } from "./api.js";
import { errorText, t } from "./i18n.js";
import { askCard, CARD_REFUSALS } from "./idcard.js";
import { applyKey, button, field, h, keypad } from "./ui.js";

export function pickupCode(app) {
  const flow = app.state.flow;
  flow.code ??= "";
  const labels = { keypad: t("code_label"), del: t("del"), clear: t("clear") };
  const submit = () => submitCode(app, 0);
  return [
    h("h2", {}, t("code_title")),
    h("div", { class: "cols" },
      h("div", {},
        field("code", t("code_label"), flow.code, { secret: false, oninput: (v) => { flow.code = v.replace(/\D/g, "").slice(0, 8); } }),
        flow.error ? h("p", { class: "notice warn", role: "alert", id: "code-error" }, flow.error) : null,
        h("div", { class: "row" },
          button(t("open_door"), submit, { class: "primary", id: "code-ok", disabled: flow.busy || undefined }),
          button(t("back"), () => app.home(), { id: "back" }))),
      keypad("digits", (k) => { flow.code = applyKey(flow.code, k, 8); flow.error = null; app.render(); }, labels)),
  ];
}

async function submitCode(app, acceptFee) {
  const flow = app.state.flow;
  if (!/^\d{6,8}$/.test(flow.code)) {
    flow.error = errorText("wrong_code");
    app.render();
    return;
  }
  performance.mark("code-submit");
  flow.busy = true;
  // once the parcel asked for a card, every try (the fee's too) reads it again with the relation
  const card = flow.card;
  const reply = card
    ? await post("pickup", { code: flow.code, accept_fee_cents: acceptFee, relation: card.relation, card_wait_s: 0 })
    : await post("pickup", { code: flow.code, accept_fee_cents: acceptFee });
  flow.busy = false;
  handleReply(app, reply, acceptFee);
}

// An ID-checked parcel (特投): the card on the reader, and a proxy's relation, before the door.
function askForCard(app, first, acceptFee) {
  const flow = app.state.flow;
  const send = (cardWaitS, relation) => post("pickup", {
    code: flow.code, accept_fee_cents: acceptFee, relation, card_wait_s: cardWaitS });
  askCard(app, "pickup", send, (result) => handleReply(app, { ok: true, result }, acceptFee),
          (reply) => handleReply(app, reply, acceptFee), first);
}

function handleReply(app, reply, acceptFee) {
  const flow = app.state.flow;
  if (reply.ok) {
    flow.code = "";
    app.startOp("pickup", reply.result, { identity: reply.result.identity_check });
    performance.mark("door-shown");
    const m = performance.measure("code-to-door", "code-submit", "door-shown");
    app.metrics.push(m.duration);
    return;
  }
  const code = reply.error.code;
  const result = reply.result ?? {};
  if (CARD_REFUSALS.includes(code)) {
    // nothing on the reader at the first try is no error: the screen just asks for the card
    const quiet = !flow.card && code === "id_check_required" && result.id_outcome === "no_card";
    askForCard(app, quiet ? null : { code, outcome: result.id_outcome ?? null }, acceptFee);
    return;
  }
  if (code === "fee_due") {
    flow.fee = result.fee_cents;
    app.show(feeScreen);
    return;
  }
  flow.code = "";
  if (code === "wrong_code" && result.attempts_left !== undefined && !result.locked_until) {
    flow.error = t("wrong_code", { n: result.attempts_left });
  } else if (result.locked_until) {
    const until = new Date(result.locked_until);
    flow.error = t("locked_out", { time: until.toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" }) });
  } else {
    flow.error = errorText(code);
  }
  app.show(pickupCode);
}

function feeScreen(app) {
  const flow = app.state.flow;
  const fee = (flow.fee / 100).toFixed(2);
  return [
    h("h2", {}, t("fee_title")),
    h("p", { class: "big", id: "fee-text" }, t("fee_text", { h: app.state.info.storage_hours, fee })),
    h("div", { class: "row" },
      button(t("fee_accept"), () => submitCode(app, flow.fee), { class: "primary", id: "fee-accept" }),
      button(t("cancel"), () => app.home(), { id: "fee-cancel" })),
  ];
}
