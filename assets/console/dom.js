// DOM helpers. Every value reaches the page as text: `h` appends strings as text nodes and
// sets attributes one by one, and nothing in the console assigns HTML (the page's
// Content-Security-Policy requires Trusted Types for HTML sinks, so such an assignment
// would throw).

/** An element: `h("td", {class: "n"}, "text", child, …)`; `on*` props become listeners. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  // append() makes a text node of anything that is not a node.
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const $ = (id) => document.getElementById(id);

/** A success, read out politely. */
export function say(message) {
  $("alert").textContent = "";
  $("status").textContent = message;
}

/** A failure, read out at once. */
export function alarm(message) {
  $("status").textContent = "";
  $("alert").textContent = message;
}

/** A time in milliseconds since the epoch, as a <time> element. */
export function time(ms) {
  if (typeof ms !== "number") return h("span", {}, "—");
  const d = new Date(ms);
  // The date and the time of day each stay on one line; a narrow column breaks between them.
  const day = d.toLocaleDateString(undefined, { dateStyle: "medium" });
  const clock = d.toLocaleTimeString(undefined, { timeStyle: "medium" });
  return h("time", { datetime: d.toISOString() }, h("span", {}, `${day},`), " ", h("span", {}, clock));
}

/**
 * Shows `message` at a control: its error element (`data-error` names it, else the id
 * `<control id>-error`), aria-invalid, focus.
 */
export function fieldError(control, message) {
  const error = $(control.dataset.error ?? `${control.id}-error`);
  control.setAttribute("aria-invalid", "true");
  if (error) error.textContent = message;
  control.focus();
}

/** Clears every field error inside `root`. */
export function clearErrors(root) {
  for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of root.querySelectorAll(".field-error")) el.textContent = "";
}

/** Asks before a consequential change, showing `details` (nodes) if any; resolves true if confirmed. */
export function confirmed(title, text, ok, details = []) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-details").replaceChildren(...details);
  $("confirm-details").hidden = !details.length;
  $("confirm-ok").textContent = ok;
  dialog.returnValue = "";
  const opener = document.activeElement;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (opener instanceof HTMLElement) opener.focus();
        resolve(dialog.returnValue === "ok");
      },
      { once: true },
    );
  });
}
