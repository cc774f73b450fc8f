// Small DOM helpers: elements built without innerHTML (no markup from data), buttons, keypads.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function button(text, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, text);
}

// A check box with its label as one touch target.
export function check(id, text, checked, onchange) {
  return h("label", { class: "check", for: id },
    h("input", { type: "checkbox", id, checked: checked || undefined,
                 onchange: (e) => onchange(e.target.checked) }), text);
}

// A text field that the on-screen keypad types into (a scanner or keyboard types into it too).
export function field(id, label, value, { secret = false, onfocus, oninput } = {}) {
  const input = h("input", { type: secret ? "password" : "text", id, name: id, value,
                             autocomplete: "off", inputmode: "none", spellcheck: "false",
                             onfocus, oninput: (e) => oninput && oninput(e.target.value) });
  return h("label", { class: "field", for: id }, h("span", {}, label), input);
}

// The on-screen keypad: digits only, or digits, letters and '-' for ids and waybills.
export function keypad(kind, onkey, labels) {
  const letters = "1234567890QWERTYUIOPASDFGHJKL-ZXCVBNM.";
  const keys = kind === "digits"
    ? ["1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "del"]
    : [...(kind === "lower" ? letters.toLowerCase() : letters), "del", "clear"];
  return h("div", { class: `keys ${kind === "digits" ? "digits" : "full"}`, role: "group", "aria-label": labels.keypad },
    keys.map((k) => button(k === "del" ? labels.del : k === "clear" ? labels.clear : k,
      () => onkey(k), { "data-key": k, class: k === "del" || k === "clear" ? "fn" : undefined })));
}

export function applyKey(value, key, max = 64) {
  if (key === "del") return value.slice(0, -1);
  if (key === "clear") return "";
  return value.length < max ? value + key : value;
}
