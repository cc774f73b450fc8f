// The kiosk page: state, screen switching, language, idle return to home, the door event stream.

import { events, get, post } from "./api.js";
import { doorScreen, onDoorEvent, showPrompt } from "./door.js";
import { lang, setLang, t } from "./i18n.js";
import { courierLogin, courierMenu, deliverForm } from "./courier.js";
import { pickupCode } from "./recipient.js";
import { sendTerms } from "./sender.js";
import { button, h } from "./ui.js";

const ALIVE_EVERY_MS = 10000;

export const app = {
  state: { info: null, intake: { open: false, reason: null }, op: null, courier: null, flow: {} },
  screen: null,
  lastTouch: Date.now(),
  lastAlive: 0,
  metrics: [],

  show(screen) {
    this.screen = screen;
    this.render();
  },

  render() {
    const main = document.getElementById("screen");
    main.replaceChildren(...[].concat(this.screen(this)).filter((c) => c !== null && c !== undefined));
    document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
    document.title = this.state.info?.name ?? t("title");
    const switcher = document.getElementById("lang");
    switcher.textContent = t("lang_switch");
    switcher.setAttribute("lang", lang() === "en" ? "zh-CN" : "en");
    const info = this.state.info;
    document.getElementById("locker-name").textContent = info?.name ?? t("title");
    document.getElementById("locker-address").textContent = info?.address ?? "";
    document.getElementById("locker-reg").textContent = info ? t("reg", { n: info.registration_number }) : "";
    showPrompt(this.state.op);
  },

  async home() {
    if (this.state.courier) await post("reset");
    this.state.op = null;
    this.state.courier = null;
    this.state.flow = {};
    showPrompt(null);
    const reply = await get("home");
    if (reply.ok) {
      this.state.info = reply.result;
      this.state.intake = reply.result.intake;
    }
    this.show(homeScreen);
  },

  // An operation the server started: its events (already arrived or still to come) drive the
  // door screen. `extra` keeps what the screen needs (e.g. the declared contents to compare).
  startOp(kind, result, extra = {}) {
    this.state.op = { id: result.op, kind, compartment: result.compartment, events: [],
                      declared: null, choosing: false, ...extra };
    for (const event of pendingEvents.splice(0)) if (event.op === result.op) this.state.op.events.push(event);
    this.show(doorScreen);
  },

  courierNext() {
    this.state.op = null;
    this.state.flow = {};
    this.show(deliverForm);
  },

  async courierMenu() {
    this.state.op = null;
    this.state.flow = {};
    const reply = await post("courier/worklist");
    if (!reply.ok) {
      this.home();
      return;
    }
    this.state.courier = reply.result;
    this.show(courierMenu);
  },

  opActive() {
    const op = this.state.op;
    if (!op) return false;
    return !op.events.some((e) => ["done", "rolled_back", "failed"].includes(e.event));
  },
};

const pendingEvents = [];

function homeScreen(a) {
  const info = a.state.info;
  if (!info) {
    return [h("h2", {}, t("title")), h("p", { class: "notice warn" }, t("unavailable")),
            button(t("home"), () => a.home(), { class: "primary" })];
  }
  const open = a.state.intake.open;
  const free = info.free ?? {};
  return [
    h("h2", {}, t("welcome")),
    h("p", { class: "identity", id: "identity" }, info.name, " · ", info.address, " · ",
      t("reg", { n: info.registration_number })),
    h("p", { class: "muted" }, t("free", { S: free.S ?? 0, M: free.M ?? 0, L: free.L ?? 0 })),
    h("div", { class: "tiles" },
      button([t("pickup"), h("small", {}, t("pickup_hint"))], () => a.show(pickupCode),
             { class: "primary", id: "go-pickup" }),
      button([t("send"), h("small", {}, open ? t("send_hint") : t("send_closed"))],
             () => a.show(sendTerms), { id: "go-send", disabled: !open, "aria-describedby": open ? undefined : "intake-closed" }),
      button([t("courier"), h("small", {}, t("courier_hint"))], () => a.show(courierLogin), { id: "go-courier" })),
    open ? null : h("div", { class: "notice warn", id: "intake-closed", role: "status" },
      h("strong", {}, t("send_closed")), h("br"), t("send_closed_detail")),
  ];
}

function onEvent(event) {
  if (event.event === "intake") {
    app.state.intake = { open: event.open, reason: event.reason };
    if (app.screen === homeScreen) app.render();
    return;
  }
  if (event.event === "home") {
    if (!app.opActive()) app.home();
    return;
  }
  const op = app.state.op;
  if (!op || op.id !== event.op) {
    pendingEvents.push(event);
    if (pendingEvents.length > 50) pendingEvents.shift();
    return;
  }
  op.events.push(event);
  onDoorEvent(app, event);
}

function touched() {
  app.lastTouch = Date.now();
  if (app.screen !== homeScreen && app.lastTouch - app.lastAlive > ALIVE_EVERY_MS) {
    app.lastAlive = app.lastTouch;
    post("alive");
  }
}

function idleCheck() {
  const limit = (app.state.info?.idle_timeout_s ?? 60) * 1000;
  if (app.screen !== homeScreen && !app.opActive() && Date.now() - app.lastTouch > limit) app.home();
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(lang() === "en" ? "zh" : "en");
  app.render();
});
for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, touched, { capture: true });
setInterval(idleCheck, 1000);
window.__kiosk = app;
events(onEvent);
app.home();
