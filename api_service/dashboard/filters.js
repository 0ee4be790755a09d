// The filter form above a list (jobs, dead letters): its values live in the route's query, so a
// filtered list can be reloaded, bookmarked and shared.

import { query } from "./api.js";
import { h } from "./dom.js";

/**
 * A search form for `#/<route>?...`.
 * Each field is { name, label, value, options?: [[value, text]...] } (a select with options,
 * else a text input); submitting it moves to the route with the filled-in values.
 */
export function filterForm(route, label, fields) {
  const controls = fields.map((f) => {
    const id = `filter-${f.name}`;
    const control = f.options
      ? h("select", { id, name: f.name }, f.options.map(([v, t]) => h("option", { value: v, selected: v === f.value }, t)))
      : h("input", { id, name: f.name, type: "text", value: f.value, autocomplete: "off", spellcheck: "false" });
    return { f, control, field: h("div", { class: "field" }, h("label", { for: id }, f.label), control) };
  });
  const apply = (event) => {
    event.preventDefault();
    location.hash = `#/${route}${query(Object.fromEntries(controls.map(({ f, control }) => [f.name, control.value.trim()])))}`;
  };
  const filtered = fields.some((f) => f.value);
  return h("form", { class: "filters", role: "search", "aria-label": label, onsubmit: apply },
    controls.map((c) => c.field),
    h("div", { class: "field field-buttons" },
      h("button", { type: "submit", class: "button-primary" }, "Filter"),
      filtered ? h("a", { href: `#/${route}`, class: "button" }, "Clear") : null,
    ),
  );
}

/** A "Load more" button in `box` when a page has a next page token, else nothing. */
export function loadMore(box, token, load) {
  box.replaceChildren(token ? h("button", { type: "button", onclick: () => load(token) }, "Load more") : "");
}
