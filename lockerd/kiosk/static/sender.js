// The sender's screens: the terms acknowledged (Art. 11), the declarations (Art. 18), the
// identity check (the ID card on a cabinet with a reader, else the carrier's real-name code), then
// the door.

import { post } from "./api.js";
import { carrierName, errorText, t, termsText } from "./i18n.js";
import { askCard } from "./idcard.js";
import { applyKey, button, check, field, h, keypad } from "./ui.js";

const CONTENTS = ["documents", "clothes", "books", "electronics", "daily", "other"];

export function sendTerms(app) {
  const flow = app.state.flow;
  const ready = flow.ackValue && flow.ackItems;
  return [
    h("h2", {}, t("terms_title")),
    h("div", { class: "terms", id: "terms", tabindex: "0", role: "region", "aria-label": t("terms_title") },
      termsText().map((p) => h("p", {}, p)),
      h("p", { class: "muted" }, t("terms_version", { v: app.state.info.terms_version }))),
    check("ack-value", t("terms_ack_value"), flow.ackValue, (v) => { flow.ackValue = v; app.render(); }),
    check("ack-items", t("terms_ack_items"), flow.ackItems, (v) => { flow.ackItems = v; app.render(); }),
    h("div", { class: "row" },
      button(t("next"), () => app.show(sendForm), { class: "primary", id: "terms-next", disabled: !ready || undefined }),
      button(t("back"), () => app.home(), { id: "back" })),
  ];
}

function sendForm(app) {
  const flow = app.state.flow;
  flow.ref ??= "";
  flow.carrier ??= app.state.info.carriers[0];
  flow.size ??= "S";
  const labels = { keypad: t("ref"), del: t("del"), clear: t("clear") };
  const choice = (key, value, text, id) => button(text, () => { flow[key] = value; app.render(); },
    { "aria-pressed": String(flow[key] === value), id });
  const reader = app.state.info.id_reader;
  return [
    h("h2", {}, t("send_title")),
    h("div", { class: "cols" },
      h("div", {},
        h("div", { class: "row", role: "group", "aria-label": t("carrier") },
          app.state.info.carriers.map((c) => choice("carrier", c, carrierName(c), `carrier-${c}`))),
        // a scanned real-name token is case-sensitive (docs/idcard.md): kept as entered; a
        // cabinet with a reader takes the card instead (the next screen)
        reader ? h("p", { class: "notice ok", id: "card-next" }, t("card_next"))
          : field("ref", t("ref"), flow.ref, { oninput: (v) => { flow.ref = v.trim(); } }),
        h("div", { class: "row", role: "group", "aria-label": t("contents") },
          CONTENTS.map((c) => choice("contents", c, t(`c_${c}`), `contents-${c}`))),
        h("div", { class: "row", role: "group", "aria-label": t("size") },
          ["S", "M", "L"].map((s) => choice("size", s, t(`size_${s}`), `size-${s}`))),
        h("div", { class: "row" },
          button(t("send_btn"), () => submit(app), { class: "primary", id: "send-ok", disabled: !app.state.intake.open || undefined }),
          button(t("back"), () => app.home(), { id: "back" }))),
      h("div", {},
        reader ? null : keypad("full", (k) => { flow.ref = applyKey(flow.ref, k, 512); app.render(); }, labels),
        flow.error ? h("p", { class: "notice warn", role: "alert", id: "send-error" }, flow.error) : null)),
  ];
}

async function submit(app) {
  const flow = app.state.flow;
  if (!flow.contents) {
    flow.error = errorText("no_contents");
    app.render();
    return;
  }
  flow.error = null;
  const send = (cardWaitS) => post("send", {
    carrier: flow.carrier, size: flow.size, verification_ref: app.state.info.id_reader ? "" : flow.ref,
    declared_contents: t(`c_${flow.contents}`), ack_insured_value: !!flow.ackValue,
    ack_prohibited_items: !!flow.ackItems, terms_version: app.state.info.terms_version,
    card_wait_s: cardWaitS,
  });
  const onOk = (result) => app.startOp("dropoff", result, { identity: result.identity_check });
  const onOther = (reply) => { flow.error = errorText(reply.error.code); app.show(sendForm); };
  if (app.state.info.id_reader) {
    askCard(app, "dropoff", send, onOk, onOther);
    return;
  }
  const reply = await send(0);
  if (reply.ok) onOk(reply.result);
  else onOther(reply);
}
