// cohort's pages: a little JavaScript over the JSON API. Forms and buttons
// call the API with the browser's session cookie and its CSRF token; errors
// appear next to the field they name; session progress is pushed by the
// server (Server-Sent Events) and time left counts down in place.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(method, path, body, contentType) {
  const opts = {method, headers: {"X-CSRF-Token": csrf}, credentials: "same-origin"};
  if (body !== undefined) {
    opts.headers["Content-Type"] = contentType || "application/json";
    opts.body = contentType ? body : JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  const data = text ? JSON.parse(text) : {};
  if (!resp.ok) {
    const err = new Error((data.error && data.error.message) || resp.statusText);
    err.field = data.error && data.error.field;
    throw err;
  }
  return data;
}

// showError puts a message next to the field it is about (or at the
// form's top), and marks the field invalid for assistive technology.
function showError(form, err) {
  clearErrors(form);
  const field = err.field || "";
  const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`) || form.querySelector('[data-error-for=""]');
  if (slot) { slot.textContent = err.message; slot.hidden = false; }
  const input = field && form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
}

function clearErrors(form) {
  form.querySelectorAll("[data-error-for]").forEach(e => { e.textContent = ""; e.hidden = true; });
  form.querySelectorAll('[aria-invalid="true"]').forEach(e => e.removeAttribute("aria-invalid"));
}

// formJSON builds a nested object from fields named like "policy.seats",
// typed by data-type: number, bool, list (comma-separated), datetime,
// optional (left out when empty), clear (a checkbox: "" when checked,
// left out when not).
function formJSON(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.type === "submit" || el.dataset.skip !== undefined) continue;
    let v = el.type === "checkbox" ? el.checked : el.value.trim();
    switch (el.dataset.type) {
      case "number": v = v === "" ? 0 : Number(v); break;
      case "list": v = v.split(/[\s,]+/).filter(Boolean); break;
      case "datetime": if (v === "") continue; v = new Date(v).toISOString(); break;
      case "optional": if (v === "") continue; break;
      case "clear": if (!v) continue; v = ""; break;
    }
    const path = el.name.split(".");
    let o = out;
    for (const p of path.slice(0, -1)) o = o[p] = o[p] || {};
    o[path[path.length - 1]] = v;
  }
  return out;
}

// Forms with data-api="METHOD /path" submit to the API; data-then says
// what to do after: "reload", or a URL with {id} from the answer.
document.addEventListener("submit", async ev => {
  const form = ev.target;
  if (!form.dataset.api) return;
  ev.preventDefault();
  const [method, path] = form.dataset.api.split(" ");
  const button = form.querySelector("[type=submit]");
  if (button) button.disabled = true;
  try {
    let data;
    const file = form.querySelector("input[type=file]");
    if (file && file.files.length && file.dataset.binary !== undefined) {
      const f = file.files[0];
      data = await api(method, `${path}?name=${encodeURIComponent(f.name)}`, f, "application/octet-stream");
    } else if (file && file.files.length) {
      data = await api(method, path, await file.files[0].text(), "text/csv");
    } else {
      data = await api(method, path, formJSON(form));
    }
    clearErrors(form);
    const then = form.dataset.then || "reload";
    if (then === "reload") location.reload();
    else if (then === "show") { const out = form.querySelector("[data-result]"); out.textContent = data[out.dataset.result]; out.hidden = false; }
    else location.assign(then.replace("{id}", data.id));
  } catch (err) {
    showError(form, err);
  } finally {
    if (button) button.disabled = false;
  }
});

// Buttons with data-post="/path" call the API; data-confirm asks first.
document.addEventListener("click", async ev => {
  const b = ev.target.closest("[data-post]");
  if (!b) return;
  if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
  b.disabled = true;
  const status = b.closest("[data-status-area]")?.querySelector("[role=status]");
  try {
    await api(b.dataset.method || "POST", b.dataset.post, b.dataset.body ? JSON.parse(b.dataset.body) : undefined);
    if (b.dataset.then !== "stay") location.reload();
  } catch (err) {
    if (status) status.textContent = err.message; else alert(err.message);
  } finally {
    b.disabled = false;
  }
});

// Time left: elements with data-until count down to an ISO time.
function humanLeft(ms) {
  if (ms <= 0) return "now";
  const m = Math.floor(ms / 60000), h = Math.floor(m / 60);
  if (h > 0) return `${h} h ${m % 60} min`;
  if (m > 0) return `${m} min`;
  return `${Math.ceil(ms / 1000)} s`;
}
function tick() {
  document.querySelectorAll("[data-until]").forEach(el => {
    el.textContent = humanLeft(new Date(el.dataset.until) - Date.now());
  });
  document.querySelectorAll("time[data-local]").forEach(el => {
    if (!el.dataset.done) { el.textContent = new Date(el.dateTime).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}); el.dataset.done = "1"; }
  });
}
tick();
setInterval(tick, 1000);

// Live progress: a session card with data-session follows the session's
// events; a change of state redraws the page.
document.querySelectorAll("[data-session]").forEach(card => {
  const list = card.querySelector(".progress");
  const state = card.dataset.state;
  if (state === "stopped" || state === "failed") return;
  const after = card.dataset.lastEvent || "0";
  const es = new EventSource(`/v1/sessions/${card.dataset.session}/events?after=${after}`);
  es.addEventListener("end", () => es.close());
  es.onmessage = null;
  for (const kind of ["requested", "provisioning", "ready", "stopping", "stopped", "failed"]) {
    es.addEventListener(kind, msg => {
      const e = JSON.parse(msg.data);
      if (list) {
        const li = document.createElement("li");
        const t = document.createElement("time");
        t.dateTime = e.time;
        t.textContent = new Date(e.time).toLocaleTimeString();
        li.append(t, document.createTextNode(e.message));
        list.append(li);
        list.scrollTop = list.scrollHeight;
      }
      if (e.state !== state) { es.close(); location.reload(); }
    });
  }
});

// The seat table refreshes itself.
const seats = document.querySelector("[data-seats]");
if (seats) setInterval(async () => {
  try {
    const resp = await fetch(location.href, {credentials: "same-origin"});
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    const fresh = doc.querySelector("[data-seats]");
    if (fresh) { seats.replaceChildren(...fresh.childNodes); tick(); }
  } catch (e) { /* keep the last table */ }
}, 4000);
