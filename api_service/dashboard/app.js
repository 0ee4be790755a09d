// The dashboard's shell: who is signed in, the hash routes, and swapping one view for another.
// Each view is a module with `show(root, ctx)` returning a function that stops what it started
// (event streams, timers) when the route changes.

import { api, keyStore, onUnauthorized } from "./api.js";
import * as deadLetters from "./deadletters.js";
import * as job from "./job.js";
import * as jobs from "./jobs.js";
import * as queue from "./queue.js";
import * as schedules from "./schedules.js";
import { showSignIn } from "./signin.js";

const RANK = { viewer: 1, submitter: 2, admin: 3, operator: 4 };

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
let session = null;
let stopView = () => {};

/** What the signed-in caller may do: `can("admin")`. The server checks again on every call. */
function can(role) {
  return Boolean(session) && (RANK[session.role] ?? 0) >= RANK[role];
}

const ROUTES = [
  { pattern: /^\/queue$/, view: queue, nav: "queue" },
  { pattern: /^\/jobs$/, view: jobs, nav: "jobs" },
  { pattern: /^\/jobs\/([^/]+)$/, view: job, nav: "jobs" },
  { pattern: /^\/dead-letters$/, view: deadLetters, nav: "dead-letters" },
  { pattern: /^\/schedules$/, view: schedules, nav: "schedules" },
];

function route() {
  if (!session) return;
  const [path, search = ""] = (location.hash.slice(1) || "/queue").split("?");
  const match = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (!match) {
    location.replace("#/queue");
    return;
  }
  stopView();
  for (const link of topbar.querySelectorAll("[data-route]")) {
    if (link.dataset.route === match.r.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const ctx = {
    session,
    can,
    params: new URLSearchParams(search),
    id: match.m[1] ? decodeURIComponent(match.m[1]) : "",
    setTitle: (title) => { document.title = `${title} · Sentinel`; },
  };
  main.replaceChildren();
  stopView = match.r.view.show(main, ctx) ?? (() => {});
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function enter(who, key) {
  if (key) keyStore.set(key);
  session = who;
  const label = who.authDisabled ? `${who.role} · auth disabled` : `${who.tenant} · ${who.role}`;
  document.getElementById("who").textContent = label;
  document.getElementById("sign-out").hidden = Boolean(who.authDisabled);
  for (const item of topbar.querySelectorAll("[data-needs]")) item.hidden = !can(item.dataset.needs);
  topbar.hidden = false;
  if (!location.hash.startsWith("#/")) location.replace("#/queue");
  route();
}

function signOut(note = "", noteKind = "info") {
  stopView();
  stopView = () => {};
  keyStore.clear();
  session = null;
  topbar.hidden = true;
  document.title = "Sign in · Sentinel";
  showSignIn(main, { enter, note, noteKind });
}

async function start() {
  // index.html's "did not start" message: it is shown by CSS after a few seconds unless removed here.
  document.getElementById("boot-failed")?.remove();
  onUnauthorized(() => {
    if (session) signOut("Your key is no longer accepted. Sign in again.");
  });
  document.getElementById("sign-out").addEventListener("click", () => signOut("You are signed out."));
  window.addEventListener("hashchange", route);
  const key = keyStore.get();
  try {
    // Without a stored key, ask first whether the server wants one (/auth needs none): a server
    // running with auth disabled lets anyone in, and a signed-out load makes no call the server
    // refuses, which the browser would log as an error.
    if (key || (await api("/auth")).authDisabled) {
      enter(await api("/whoami", { key }), key);
      return;
    }
  } catch (error) {
    keyStore.clear();
    if (error.status !== 401) {
      signOut(error.message, "error");
      return;
    }
  }
  signOut(key ? "Your key is no longer accepted. Sign in again." : "");
}

start();
