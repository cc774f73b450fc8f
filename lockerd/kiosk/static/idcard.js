// The ID-card reader's screens: "lay your card on the reader", a countdown while the daemon waits
// for it, then the door (with the masked result) or the refusal in plain words, with retry and
// cancel. Used by a real-name drop-off (Art. 18) and by the pickup of an ID-checked government
// document (特投), where a proxy first picks the relation. The page never sees a clear name or ID
// number: the daemon answers with `张*` and `1****************X` only (docs/idcard.md).

import { post } from "./api.js";
import { errorText, t } from "./i18n.js";
import { button, h } from "./ui.js";

// How long the daemon waits for a card on the reader (panel.v2 `card_wait_s`, at most 30).
export const CARD_WAIT_S = 20;
// Refusals of the card check itself; anything else goes back to the form that asked.
export const CARD_REFUSALS = ["no_verification", "id_card_expired", "id_check_required", "id_mismatch"];
// A proxy states the relation (same codes as `lockerctl panel pickup --relation`).
export const RELATIONS = ["self", "family", "colleague", "property_management", "other"];

let ticker = null;

// Start (or restart) the card flow: `send(cardWaitS, relation)` posts the operation and returns
// the daemon's reply; `onOk(result)` starts the door screen; `onOther(reply)` handles the rest.
export function askCard(app, purpose, send, onOk, onOther, first = null) {
  app.state.flow.card = { purpose, phase: purpose === "pickup" ? "choose" : "reading",
                          relation: app.state.flow.card?.relation ?? "self", send, onOk, onOther,
                          refusal: first };
  if (purpose === "pickup") app.show(cardScreen);
  else readCard(app);
}

async function readCard(app) {
  const card = app.state.flow.card;
  card.phase = "reading";
  card.refusal = null;
  card.until = Date.now() + CARD_WAIT_S * 1000;
  app.show(cardScreen);
  startTicker(app);
  const reply = await card.send(CARD_WAIT_S, card.purpose === "pickup" ? card.relation : null);
  stopTicker();
  if (reply.ok) {  // a door is opening: shown whatever screen is up now
    card.onOk(reply.result);
    return;
  }
  if (app.state.flow.card !== card) return;  // the screen went home meanwhile
  if (!CARD_REFUSALS.includes(reply.error.code)) {
    card.onOther(reply);
    return;
  }
  card.phase = "refused";
  card.refusal = { code: reply.error.code, outcome: reply.result?.id_outcome ?? null };
  app.render();
}

function startTicker(app) {
  stopTicker();
  ticker = setInterval(() => {
    const el = document.getElementById("card-progress");
    const card = app.state.flow.card;
    if (!el || !card || card.phase !== "reading") { stopTicker(); return; }
    el.textContent = progressText(card);
    const bar = document.getElementById("card-bar");
    if (bar) bar.value = CARD_WAIT_S - secondsLeft(card);
  }, 250);
}

function stopTicker() {
  if (ticker !== null) clearInterval(ticker);
  ticker = null;
}

function secondsLeft(card) {
  return Math.max(0, Math.ceil((card.until - Date.now()) / 1000));
}

function progressText(card) {
  const left = secondsLeft(card);
  return left > 0 ? t("card_waiting", { s: left }) : t("card_reading");
}

// Why the check failed, in plain words: the outcome first (no card in time, unreadable,
// expired), then the refusal code.
export function refusalText(refusal) {
  if (refusal.code === "id_mismatch") return t("card_mismatch");
  if (refusal.outcome === "expired" || refusal.code === "id_card_expired") return t("card_expired");
  if (refusal.outcome === "no_card") return t("card_none", { s: CARD_WAIT_S });
  if (refusal.outcome === "unreadable") return t("card_unreadable");
  return errorText(refusal.code);
}

// The masked result as the door screen shows it ("核验通过：张* 1****************X").
export function maskedResult(check) {
  if (!check || check.outcome !== "passed") return null;
  const who = [check.name_masked, check.id_masked].filter(Boolean).join(" ");
  const text = check.relation && check.relation !== "self"
    ? t("card_ok_proxy", { who, rel: t(`rel_${check.relation}`) }) : t("card_ok", { who });
  return h("p", { class: "notice ok", id: "card-result", role: "status" }, text);
}

export function cardScreen(app) {
  const card = app.state.flow.card;
  const title = card.purpose === "pickup" ? t("card_title_pickup") : t("card_title_send");
  const out = [h("h2", {}, title)];
  if (card.phase === "choose") {
    out.push(h("p", { class: "big", id: "card-ask" }, t("card_ask_pickup")));
    if (card.refusal) out.push(h("p", { class: "notice warn", role: "alert", id: "card-error" }, refusalText(card.refusal)));
    out.push(h("div", { class: "row", role: "group", id: "relations", "aria-label": t("card_relation") },
      RELATIONS.map((r) => button(t(`rel_${r}`), () => { card.relation = r; app.render(); },
        { "aria-pressed": String(card.relation === r), id: `relation-${r}`, "data-relation": r }))));
    out.push(h("div", { class: "row" },
      button(t("card_read"), () => readCard(app), { class: "primary", id: "card-read" }),
      button(t("cancel"), () => app.home(), { id: "card-cancel" })));
  } else if (card.phase === "reading") {
    out.push(h("p", { class: "big", id: "card-ask" }, t("card_ask")));
    out.push(h("progress", { id: "card-bar", max: String(CARD_WAIT_S), value: "0", "aria-label": t("card_reading") }));
    // no cancel while the daemon waits: a card laid on the reader then would still open a door
    // (the wait is bounded: CARD_WAIT_S); retry and cancel come with the answer
    out.push(h("p", { id: "card-progress", role: "status" }, progressText(card)));
  } else {
    out.push(h("p", { class: "notice warn big", role: "alert", id: "card-error" }, refusalText(card.refusal)));
    out.push(h("div", { class: "row" },
      button(t("card_retry"), () => (card.purpose === "pickup" ? (card.phase = "choose", app.render()) : readCard(app)),
        { class: "primary", id: "card-retry" }),
      button(t("cancel"), () => app.home(), { id: "card-cancel" })));
  }
  return out;
}
