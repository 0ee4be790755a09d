// The sign-in form: an API key checked against GET /whoami before it is kept (for this tab only).

import { api } from "./api.js";
import { h, notice } from "./dom.js";

/** Show the form in `root` (with a note above it: "info" or "error"); `enter(who, key)` is called once a key is accepted. */
export function showSignIn(root, { enter, note = "", noteKind = "info" }) {
  const error = h("p", { id: "key-error", class: "field-error", role: "alert" });
  error.hidden = true;
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "key-help key-error",
  });
  const button = h("button", { type: "submit", class: "button-primary" }, "Sign in");

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  async function submit(event) {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return fail("Enter your API key.");
    button.disabled = true;
    button.textContent = "Signing in…";
    try {
      const who = await api("/whoami", { key });
      enter(who, key);
    } catch (err) {
      if (err.status === 401) fail("This key was not accepted. Check it and try again.");
      else fail(err.message || "Signing in failed.");
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  }

  const form = h("form", { class: "signin-form", novalidate: true, onsubmit: submit },
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { id: "key-help", class: "hint" },
      "Kept in this browser tab only and forgotten when the tab closes. An operator makes keys with ",
      h("code", {}, "sentinel keys create"), "."),
    error,
    button,
  );
  root.replaceChildren(
    h("section", { class: "signin card", "aria-labelledby": "signin-title" },
      h("div", { class: "signin-brand" }, h("img", { src: "/dashboard/icon.svg", alt: "", width: 40, height: 40 })),
      h("h1", { id: "signin-title" }, "Sign in to Sentinel"),
      note ? notice(noteKind, note) : null,
      form,
    ),
  );
  input.focus();
}
