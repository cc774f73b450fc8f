// Talks to the kiosk server: JSON POST bodies with the page's CSRF token, and its event stream.

const csrf = document.querySelector('meta[name="csrf-token"]').content;

export async function post(path, body = {}) {
  let response;
  try {
    response = await fetch(`/api/${path}`, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
  } catch {
    return { ok: false, error: { code: "unavailable" } };
  }
  return readReply(response);
}

export async function get(path) {
  try {
    return await readReply(await fetch(`/api/${path}`, { credentials: "same-origin", cache: "no-store" }));
  } catch {
    return { ok: false, error: { code: "unavailable" } };
  }
}

async function readReply(response) {
  try {
    const reply = await response.json();
    if (response.status === 403 && reply?.error?.code === "no_session") {
      window.location.reload();
    }
    return reply;
  } catch {
    return { ok: false, error: { code: "unavailable" } };
  }
}

export function events(onEvent) {
  const source = new EventSource("/api/events");
  source.onmessage = (message) => {
    try { onEvent(JSON.parse(message.data)); } catch { /* a broken line is skipped */ }
  };
  return source;
}
