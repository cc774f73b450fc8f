// The courier's screens: login, the worklist (collect, take back), and delivering parcels (Art. 22-23).

import { post } from "./api.js";
import { carrierName, errorText, t } from "./i18n.js";
import { applyKey, button, check, field, h, keypad } from "./ui.js";

export function courierLogin(app) {
  const flow = app.state.flow;
  flow.carrier ??= app.state.info.carriers[0];
  flow.cid ??= "";
  flow.pin ??= "";
  flow.pass ??= "";
  flow.active ??= "cid";
  const labels = { keypad: flow.active === "pin" ? t("pin") : t("courier_id"), del: t("del"), clear: t("clear") };
  const focus = (name) => () => { if (flow.active !== name) { flow.active = name; app.render(); } };
  const cid = field("cid", t("courier_id"), flow.cid, { onfocus: focus("cid"), oninput: (v) => { flow.cid = v; } });
  const pin = field("pin", t("pin"), flow.pin, { secret: true, onfocus: focus("pin"), oninput: (v) => { flow.pin = v; } });
  // an offline pass (docs/passes.md), typed by the QR scanner's keyboard wedge or pasted
  const pass = field("pass", t("pass"), flow.pass, { onfocus: focus("pass"), oninput: (v) => { flow.pass = v; } });
  (flow.active === "pin" ? pin : flow.active === "pass" ? pass : cid).querySelector("input").classList.add("active");
  return [
    h("h2", {}, t("login_title")),
    h("div", { class: "cols" },
      h("div", {},
        h("div", { class: "row", role: "group", "aria-label": t("carrier") },
          app.state.info.carriers.map((c) => button(carrierName(c), () => { flow.carrier = c; app.render(); },
            { "aria-pressed": String(flow.carrier === c), id: `carrier-${c}` }))),
        cid, pin, pass,
        h("div", { class: "row" },
          button(t("login"), () => login(app), { class: "primary", id: "login-ok" }),
          button(t("back"), () => app.home(), { id: "back" }))),
      h("div", {},
        keypad(flow.active === "pin" ? "digits" : "lower", (k) => {
          flow[flow.active] = applyKey(flow[flow.active], k, flow.active === "pin" ? 12 : flow.active === "pass" ? 2048 : 64);
          app.render();
        }, labels),
        flow.error ? h("p", { class: "notice warn", role: "alert", id: "login-error" }, flow.error) : null)),
  ];
}

async function login(app) {
  const flow = app.state.flow;
  const creds = flow.pass.trim()
    ? { pass: flow.pass.trim() }
    : { carrier: flow.carrier, courier_id: flow.cid, pin: flow.pin };
  const reply = await post("courier/login", creds);
  flow.pin = "";
  flow.pass = "";
  if (!reply.ok) {
    flow.error = errorText(reply.error.code);
    app.render();
    return;
  }
  app.state.courier = reply.result;
  app.state.flow = {};
  app.show(courierMenu);
}

export function courierMenu(app) {
  const c = app.state.courier;
  const item = (p, action, label, path) => h("li", {},
    h("span", {}, t("door", { n: p.compartment }), " · ", p.waybill || p.parcel_id,
      p.declared_contents ? [" · ", t("declared", { c: p.declared_contents })] : null),
    button(label, () => action(app, path, p), { class: "primary", "data-parcel": p.parcel_id }));
  const list = (items, label, path) => (items.length
    ? h("ul", { class: "list" }, items.map((p) => item(p, open, label, path)))
    : h("p", { class: "muted" }, t("nothing")));
  return [
    h("h2", {}, t("menu_title", { id: c.courier_id })),
    h("div", { class: "row" },
      button(t("deliver"), () => app.show(deliverForm), { class: "primary", id: "deliver" }),
      button(t("logout"), () => app.home(), { id: "logout" })),
    app.state.flow.error ? h("p", { class: "notice warn", role: "alert", id: "menu-error" }, app.state.flow.error) : null,
    h("h3", {}, t("to_collect")), list(c.to_collect, t("collect"), "courier/collect"),
    h("h3", {}, t("to_return")), list(c.to_return, t("take_back"), "courier/return"),
  ];
}

async function open(app, path, parcel) {
  const reply = await post(path, { parcel_id: parcel.parcel_id });
  if (reply.ok) {
    app.startOp(path === "courier/collect" ? "collect" : "return", reply.result,
                { contents: parcel.declared_contents });
    return;
  }
  app.state.flow.error = errorText(reply.error.code);
  app.render();
}

export function deliverForm(app) {
  const flow = app.state.flow;
  flow.waybill ??= "";
  flow.size ??= "S";
  flow.flags ??= { consent: true };
  const labels = { keypad: t("waybill"), del: t("del"), clear: t("clear") };
  const flag = (name, text) => check(`flag-${name}`, text, flow.flags[name], (v) => { flow.flags[name] = v; });
  return [
    h("h2", {}, t("deliver_title")),
    h("div", { class: "cols" },
      h("div", {},
        field("waybill", t("waybill"), flow.waybill, { oninput: (v) => { flow.waybill = v.toUpperCase(); } }),
        h("div", { class: "row", role: "group", "aria-label": t("size") },
          ["S", "M", "L"].map((s) => button(t(`size_${s}`), () => { flow.size = s; app.render(); },
            { "aria-pressed": String(flow.size === s), id: `size-${s}` }))),
        h("div", { class: "flags" },
          flag("consent", t("consent")), flag("sender_chose_locker", t("sender_chose")),
          flag("damaged", t("damaged")), flag("fresh", t("fresh")), flag("valuable", t("valuable")),
          flag("agreement", t("agreement"))),
        h("div", { class: "row" },
          button(t("deliver"), () => deliver(app), { class: "primary", id: "deliver-ok" }),
          button(t("back"), () => app.courierMenu(), { id: "back" }))),
      h("div", {},
        keypad("full", (k) => { flow.waybill = applyKey(flow.waybill, k, 40); app.render(); }, labels),
        flow.error ? h("p", { class: "notice warn", role: "alert", id: "deliver-error" }, flow.error) : null)),
  ];
}

async function deliver(app) {
  const flow = app.state.flow;
  const reply = await post("courier/deliver", { waybill: flow.waybill, size: flow.size, ...flow.flags });
  if (reply.ok) {
    app.state.flow = {};
    app.startOp("deliver", reply.result);
    return;
  }
  flow.error = errorText(reply.error.code);
  app.render();
}
