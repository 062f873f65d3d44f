// The tidings console: a single page whose parts are drawn from the /v1 API with the user's
// credentials. Pages are picked by the URL's #fragment (#campaigns, #rules, #rules/FILE,
// #changes, #changes/N, #audit, #explain); each page is one function that fetches what it shows
// and draws it into <main>. Credentials live in sessionStorage only (gone with the tab).
"use strict";

// ---- Basics: where the API is, who is logged in, how to call it ------------------------------

/** The prefix a reverse proxy serves tidings under ("" without one), written by the server. */
const BASE = document.querySelector('meta[name="tidings-base"]').content.replace(/\/$/, "");
const ROLES = ["viewer", "author", "approver", "admin"];
const STAGES = ["triggered", "matched", "suppressed", "sent", "delivered", "replied", "answered", "accepted"];
const STAGE_COLORS = ["#9aa9c2", "#6f8fc7", "#d9822b", "#1d5fbf", "#2e7d32", "#7b5ea7", "#7b5ea7", "#067647"];

/** The logged-in user: {auth, name, role}, or null. */
function session() {
  try {
    return JSON.parse(sessionStorage.getItem("tidings.session"));
  } catch (_) {
    return null;
  }
}

/** Whether the logged-in user's role is at least `role`. */
function may(role) {
  const s = session();
  return !!s && ROLES.indexOf(s.role) >= ROLES.indexOf(role);
}

/** Calls the API: {status, data} (data: the JSON answer, or the text for a non-JSON one). */
async function api(method, path, body, auth) {
  const headers = { Authorization: auth || (session() || {}).auth || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = text;
  try {
    data = JSON.parse(text);
  } catch (_) { /* a rule file is text */ }
  if (r.status === 401 && !auth) {
    logout();
  }
  return { status: r.status, data };
}

/** An API call that must succeed: its data, or a thrown Error with the API's message. */
async function must(method, path, body) {
  const r = await api(method, path, body);
  if (r.status >= 400) throw new Error((r.data && r.data.error) || `${method} ${path}: ${r.status}`);
  return r.data;
}

// ---- Drawing helpers ---------------------------------------------------------------------------

/** An element: h("td", {class: "num"}, "12"); strings become text, never HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A table from a header row of label keys and rows of cells (numbers right-aligned). */
function table(head, rows, attrs) {
  const cell = (tag, v) => h(tag, typeof v === "number" ? { class: "num" } : {}, v);
  return h("table", attrs, h("thead", {}, h("tr", {}, head.map((k) => h("th", {}, t(k))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((v) => cell("td", v))))));
}

/** Replaces the page's content. */
function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
}

/** A short message in the corner. */
function toast(msg, bad) {
  const el = document.getElementById("toast");
  el.textContent = msg;
  el.className = "show" + (bad ? " bad" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = ""; }, 4000);
}

function pill(status) {
  return h("span", { class: `pill ${status}`, "data-status": status }, t(`status.${status}`));
}

/** A local time from an RFC 3339 one, short. */
function when(ts) {
  return ts ? String(ts).replace("T", " ").replace(/(\.\d+)?(Z|[+-]\d\d:\d\d)$/, "") : "";
}

// ---- Log in and out ----------------------------------------------------------------------------

/** UTF-8 safe base64 (user names may be Chinese). */
function b64(s) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(s)));
}

/**
 * Logs in with a user name and password (HTTP Basic) or a token (Bearer): whichever the API
 * accepts, asked through GET /v1/whoami. A token user may leave the name empty.
 */
async function login(name, secret) {
  const tries = name ? [`Basic ${b64(`${name}:${secret}`)}`, `Bearer ${secret}`] : [`Bearer ${secret}`];
  for (const auth of tries) {
    const r = await api("GET", "/v1/whoami", undefined, auth);
    if (r.status === 200 && (!name || r.data.name === name)) {
      sessionStorage.setItem("tidings.session", JSON.stringify({ auth, name: r.data.name, role: r.data.role }));
      return true;
    }
  }
  return false;
}

function logout() {
  sessionStorage.removeItem("tidings.session");
  drafts.clear();
  route();
}

/** The login page. */
function loginPage() {
  const user = h("input", { id: "login-user", autocomplete: "username" });
  const secret = h("input", { id: "login-secret", type: "password", autocomplete: "current-password" });
  const err = h("p", { class: "error", id: "login-error" });
  const form = h("form", { class: "card login", onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = "";
    if (await login(user.value.trim(), secret.value)) route();
    else err.textContent = t("login.failed");
  } },
  h("h1", {}, t("login.title")),
  h("label", { for: "login-user" }, t("login.user")), user,
  h("label", { for: "login-secret" }, t("login.secret")), secret,
  h("p", {}, h("button", { class: "primary", id: "login-go", type: "submit" }, t("login.go"))), err);
  show(form);
  user.focus();
}

// ---- Campaigns and their funnels ---------------------------------------------------------------

/** The counts of one funnel row as stage values (suppressed: every reason added up). */
function stageValues(row) {
  const sup = Object.values(row.suppressed || {}).reduce((a, b) => a + b, 0);
  return STAGES.map((s) => (s === "suppressed" ? sup : row[s] || 0));
}

/** Adds `row`'s counts into `into` (suppressed per reason). */
function addCounts(into, row) {
  for (const s of STAGES) {
    if (s === "suppressed") {
      for (const [why, n] of Object.entries(row.suppressed || {})) into.suppressed[why] = (into.suppressed[why] || 0) + n;
    } else {
      into[s] = (into[s] || 0) + (row[s] || 0);
    }
  }
  return into;
}

/** The funnel's days summed per key ("campaign" or "rule"): {name: counts}. */
function sumFunnel(days, list, key) {
  const out = {};
  for (const d of days) {
    for (const row of d[list] || []) addCounts(out[row[key]] || (out[row[key]] = { suppressed: {} }), row);
  }
  return out;
}

/** One campaign's funnel as a bar chart. */
function funnelChart(name, counts) {
  const values = stageValues(counts);
  const bars = STAGES.map((s, i) => ({ key: s, label: t(`stage.${s}`), value: values[i], color: STAGE_COLORS[i] }));
  const why = Object.entries(counts.suppressed).map(([k, n]) => `${k} ${n}`).join(", ");
  return h("div", { class: "card chart", "data-campaign": name }, h("h2", {}, name), barChart(bars),
    why ? h("p", { class: "muted" }, `${t("stage.suppressed")}: ${why}`) : null);
}

/** The campaigns page: the campaigns' table, then the funnel per campaign over a date range. */
async function campaignsPage() {
  const [camps, funnel, journeys] = await Promise.all([api("GET", "/v1/campaigns"), api("GET", "/v1/funnel" + funnelQuery()),
    api("GET", "/v1/journeys")]);
  const rows = (camps.status === 200 ? camps.data.campaigns : []).map((c) => [
    c.name, c.owner || "", when(c.start), when(c.end), c.status,
    c.budget ? money(c.budget.contacts, c.budget.limit_fen) : "", c.spent ? money(c.spent.contacts, c.spent.fen) : "",
  ]);
  show(h("h1", {}, t("campaigns.title")),
    rows.length ? table(["campaign", "owner", "start", "end", "status", "budget", "spent"], rows, { id: "campaigns" })
      : h("p", { class: "muted" }, camps.status === 200 ? t("campaigns.none") : (camps.data.error || "")),
    journeysSection(journeys),
    funnelSection(funnel));
}

/** Journey instances in progress now, by step (summed over the engine's shards). */
function journeysSection(j) {
  const box = h("div", { id: "journeys-now" }, h("h2", {}, t("journeys.title")));
  if (j.status !== 200) {
    box.append(h("p", { class: "muted" }, (j.data && j.data.error) || String(j.status)));
    return box;
  }
  const list = j.data.journeys || [];
  if (!list.length) {
    box.append(h("p", { class: "muted", id: "journeys-none" }, t("journeys.none")));
    return box;
  }
  const rows = list.flatMap((x) => x.steps.map((s, i) => [i ? "" : `${x.journey} (${x.in_progress})`, s.step, s.in_progress]));
  box.append(table(["journey", "journeys.step", "journeys.in_progress"], rows, { id: "journeys" }));
  return box;
}

/** Contacts and an amount in fen, as "1200 · ¥36.00" (either may be missing). */
function money(contacts, fen) {
  return [contacts, fen ? `¥${(fen / 100).toFixed(2)}` : null].filter((x) => x !== null && x !== undefined).join(" · ");
}

/** The query of the funnel's date range (kept in the page's inputs between redraws). */
function funnelQuery() {
  const q = new URLSearchParams();
  if (funnelRange.from) q.set("from", funnelRange.from);
  if (funnelRange.to) q.set("to", funnelRange.to);
  const s = q.toString();
  return s ? `?${s}` : "";
}
const funnelRange = { from: "", to: "" };

/** The funnel part of the campaigns page: a chart per campaign, a table per rule. */
function funnelSection(funnel) {
  const box = h("div", { id: "funnel" }, h("h2", {}, t("funnel.title")));
  if (funnel.status === 404) {
    box.append(h("p", { class: "muted", id: "funnel-none" }, t("funnel.none")));
    return box;
  }
  if (funnel.status !== 200) {
    box.append(h("p", { class: "error" }, (funnel.data && funnel.data.error) || String(funnel.status)));
    return box;
  }
  const from = h("input", { type: "date", value: funnelRange.from });
  const to = h("input", { type: "date", value: funnelRange.to });
  box.append(h("div", { class: "row" }, t("funnel.from"), from, t("funnel.to"), to,
    h("button", { onclick: () => { funnelRange.from = from.value; funnelRange.to = to.value; campaignsPage(); } }, t("funnel.show"))));
  const days = funnel.data.days || [];
  const byCampaign = sumFunnel(days, "campaigns", "campaign");
  if (!Object.keys(byCampaign).length) {
    box.append(h("p", { class: "muted", id: "funnel-empty" }, t("funnel.empty")));
    return box;
  }
  box.append(h("div", { class: "row" }, Object.entries(byCampaign).map(([name, c]) => funnelChart(name, c))));
  const byRule = sumFunnel(days, "rules", "rule");
  box.append(h("h2", {}, t("funnel.by_rule")),
    table(["diff.rule", ...STAGES.map((s) => `stage.${s}`)], Object.entries(byRule).map(([r, c]) => [r, ...stageValues(c)]), { id: "funnel-rules" }));
  return box;
}

// ---- Rules: the files of the live version, and the editor --------------------------------------

/** Edited files not yet submitted: name → text (kept while the tab is open). */
const drafts = new Map();
/** The live version's files as loaded: name → text. */
const originals = new Map();

/** The rules page: the live version's files; with a file named, the editor on it. */
async function rulesPage(file) {
  const o = await api("GET", "/v1/deploy");
  if (o.status !== 200) {
    show(h("h1", {}, t("rules.title")), h("p", { class: "muted" }, t("rules.nodeploy")));
    return;
  }
  const live = o.data.live;
  const manifest = await must("GET", `/v1/deploy/versions/${live}`);
  const names = manifest.files.map((f) => f.name).filter((n) => /\.ya?ml$/.test(n));
  const list = h("div", { class: "card files", id: "files" }, h("h2", {}, t("rules.live", { v: live })),
    names.map((n) => h("a", { href: `#rules/${encodeURIComponent(n)}`, "data-file": n }, (drafts.has(n) ? "● " : "") + n)));
  if (!file) {
    show(h("h1", {}, t("rules.title")), list, h("p", { class: "muted" }, t("rules.open")));
    return;
  }
  if (!originals.has(`${live}/${file}`)) {
    originals.set(`${live}/${file}`, await must("GET", `/v1/deploy/versions/${live}/files/${file.split("/").map(encodeURIComponent).join("/")}`));
  }
  const original = originals.get(`${live}/${file}`);
  show(h("h1", {}, file), h("div", { class: "row top" },
    h("div", { class: "side" }, list), h("div", { class: "grow" }, editor(file, original))));
}

/**
 * The editor on one file: a textarea with a line-number gutter. As the author types, the draft
 * is validated (debounced 300 ms, POST /v1/deploy/validate with every draft) and each diagnostic
 * marks its line in the gutter and is listed below with its code, position, message and hint.
 */
function editor(file, original) {
  const text = h("textarea", { id: "source", spellcheck: "false", wrap: "off" });
  text.value = drafts.has(file) ? drafts.get(file) : original;
  const gutter = h("div", { class: "gutter", id: "gutter" });
  const status = h("span", { id: "diag-status", class: "muted" });
  const diags = h("ul", { class: "diags", id: "diags" });
  const others = h("div", { id: "diags-other" });
  const results = h("div", { id: "checks" });
  let marks = {};

  const drawGutter = () => {
    const n = text.value.split("\n").length;
    gutter.replaceChildren(...Array.from({ length: n }, (_, i) => {
      const m = marks[i + 1];
      return h("div", { "data-line": i + 1, class: m || null, title: m ? t("editor.line", { n: i + 1 }) : null,
        onclick: m ? () => goToLine(text, i + 1) : null }, i + 1);
    }));
    gutter.scrollTop = text.scrollTop;
  };
  const check = async () => {
    status.textContent = t("editor.checking");
    const r = await api("POST", "/v1/deploy/validate", { files: Object.fromEntries(drafts) });
    if (r.status !== 200) {
      status.textContent = (r.data && r.data.error) || String(r.status);
      return;
    }
    marks = {};
    const mine = r.data.diagnostics.filter((d) => d.file === file);
    for (const d of mine) marks[d.line] = marks[d.line] === "error" ? "error" : d.severity;
    diags.replaceChildren(...mine.map((d) => diagItem(d, () => goToLine(text, d.line, d.col))));
    const rest = r.data.diagnostics.filter((d) => d.file !== file);
    others.replaceChildren(...(rest.length ? [h("h2", {}, t("editor.other")), h("ul", { class: "diags" }, rest.map((d) => diagItem(d)))] : []));
    status.textContent = r.data.errors || r.data.warnings ? t("editor.errors", { n: r.data.errors, w: r.data.warnings }) : t("editor.ok");
    status.className = r.data.errors ? "bad" : "good";
    drawGutter();
  };
  let timer = null;
  text.addEventListener("input", () => {
    if (text.value === original) drafts.delete(file);
    else drafts.set(file, text.value);
    drawGutter();
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
  text.addEventListener("scroll", () => { gutter.scrollTop = text.scrollTop; });
  drawGutter();
  if (may("author")) check();
  return h("div", {}, h("div", { class: "editor" }, gutter, text), h("p", {}, status), diags, others,
    may("author") ? editorActions(file, text, original, results) : h("p", { class: "muted" }, t("editor.author_only")),
    results);
}

/** One diagnostic as `validate` prints it: code, file:line:col, message, hint. */
function diagItem(d, onclick) {
  return h("li", { class: d.severity, "data-line": d.line, "data-code": d.code, onclick },
    h("code", {}, d.code), ` ${d.file}:${d.line}:${d.col} `, d.message, d.hint ? h("div", { class: "muted" }, d.hint) : null);
}

/** Puts the caret at `line` (1-based) and `col` and scrolls there. */
function goToLine(text, line, col) {
  const lines = text.value.split("\n");
  const at = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + Math.max(0, (col || 1) - 1);
  text.focus();
  text.setSelectionRange(at, at);
  text.scrollTop = Math.max(0, (line - 5) * 20);
}

/** The editor's buttons: revert, run the checks on the draft, submit it with a comment. */
function editorActions(file, text, original, results) {
  const comment = h("input", { id: "comment", class: "grow", placeholder: t("editor.comment") });
  const tryIt = async () => {
    results.replaceChildren(h("p", { class: "muted" }, t("editor.trying")));
    const r = await api("POST", "/v1/deploy/try", { files: Object.fromEntries(drafts) });
    if (r.status !== 200) return results.replaceChildren(h("p", { class: "error" }, r.data.error || String(r.status)));
    results.replaceChildren(r.data.checks ? checksView(r.data.checks) : h("p", { class: "bad" }, t("editor.errors", { n: r.data.errors, w: r.data.warnings })));
    results.scrollIntoView({ block: "nearest" });
  };
  const submit = async () => {
    const r = await api("POST", "/v1/deploy/changes", { comment: comment.value, files: Object.fromEntries(drafts) });
    if (r.status !== 201) return toast(r.data.error || String(r.status), true);
    drafts.clear();
    location.hash = `#changes/${r.data.id}`;
  };
  const revert = () => {
    drafts.delete(file);
    text.value = original;
    text.dispatchEvent(new Event("input"));
  };
  return h("div", { class: "row" }, h("button", { onclick: revert }, t("editor.revert")),
    h("button", { id: "try", onclick: tryIt }, t("editor.try")), comment,
    h("button", { class: "primary", id: "submit", onclick: submit }, t("editor.submit")));
}

/** What deploying the change would drop or start afresh (journey steps, timers, derived
 * attributes, windows), warnings first: informational, it does not fail the checks. */
function reloadView(r) {
  if (!r) return [];
  if (r.error) return [h("h2", {}, t("checks.reload")), h("p", { class: "error" }, r.error)];
  const lines = r.lines || [];
  const warn = lines.filter((l) => l.startsWith("warning: "));
  const rest = lines.filter((l) => !l.startsWith("warning: "));
  if (!lines.length) return [h("h2", {}, t("checks.reload")), h("p", { id: "checks-reload", class: "muted" }, t("checks.carried"))];
  return [h("h2", {}, t("checks.reload")),
    h("ul", { id: "checks-reload" }, ...warn.map((l) => h("li", { class: "bad" }, l)), ...rest.map((l) => h("li", {}, l)))];
}

/** A change's checks: the tests' outcome, what a deploy carries over, and the backtest's diff
 * per rule and campaign. */
function checksView(c) {
  const ok = (b) => h("span", { class: b ? "good" : "bad" }, t(b ? "checks.passed" : "checks.failed"));
  const tests = c.tests || {};
  const bt = c.backtest || {};
  const parts = [h("h2", {}, t("checks.all"), " ", ok(c.passed)),
    h("p", { id: "checks-tests" }, `${t("checks.tests")}: `, ok(tests.passed), " ",
      t("checks.cases", { p: tests.cases_passed || 0, f: tests.cases_failed || 0 })),
    ...(tests.failures || []).map((f) => h("pre", { class: "error" }, f)),
    ...(tests.diagnostics || []).map((f) => h("pre", { class: "error" }, f)),
    ...reloadView(c.reload),
    h("h2", {}, t("checks.backtest"), " ", ok(bt.passed))];
  if (bt.skipped) parts.push(h("p", { class: "muted" }, t("checks.skipped", { why: bt.skipped })));
  if (bt.error) parts.push(h("p", { class: "error" }, bt.error));
  const row = (name) => (x) => [x[name], x.old_sent, x.new_sent, x.gained, x.lost];
  const head = ["diff.rule", "diff.old", "diff.new", "diff.gained", "diff.lost"];
  if (bt.rules) parts.push(table(head, bt.rules.map(row("rule")), { id: "backtest-rules" }));
  if (bt.campaigns) parts.push(table(["campaign", ...head.slice(1)], bt.campaigns.map(row("campaign")), { id: "backtest-campaigns" }));
  return h("div", { class: "card" }, parts);
}

// ---- Changes: the list, one change, approve / reject / deploy, rollback ------------------------

/** The changes page: what is live, its history (with rollback), and every change. */
async function changesPage() {
  const o = await api("GET", "/v1/deploy");
  if (o.status !== 200) return show(h("h1", {}, t("changes.title")), h("p", { class: "muted" }, t("rules.nodeploy")));
  const d = o.data;
  const changes = d.changes.slice().reverse().map((c) => [
    h("a", { href: `#changes/${c.id}` }, String(c.id)), c.version, c.author, when(c.time), c.comment, pill(c.status),
  ]);
  show(h("h1", {}, t("changes.title")),
    h("p", {}, `${t("changes.live")}: `, h("code", { id: "live-version" }, d.live)),
    changes.length ? table(["change", "version", "author", "time", "comment", "status"], changes, { id: "changes" })
      : h("p", { class: "muted" }, t("changes.none")),
    h("h2", {}, t("history")),
    table(["version", "how", "user", "time", "change"], d.history.slice().reverse().map((e) => [e.version, e.how, e.user, when(e.time), e.change ?? ""])),
    may("approver") ? rollbackForm(d) : null);
}

/** Rollback (approvers): to any version that was live before, the previous one by default. */
function rollbackForm(d) {
  const earlier = [...new Set(d.history.map((e) => e.version).reverse())].filter((v) => v !== d.live);
  if (!earlier.length) return null;
  const pick = h("select", { id: "rollback-to" }, earlier.map((v) => h("option", { value: v }, v)));
  const comment = h("input", { id: "rollback-comment", placeholder: t("comment") });
  return h("div", { class: "card row" }, t("rollback.to"), pick, comment,
    h("button", { class: "danger", id: "rollback", onclick: async () => {
      const r = await api("POST", "/v1/deploy/rollback", { version: pick.value, comment: comment.value });
      if (r.status !== 200) return toast(r.data.error || String(r.status), true);
      toast(`${t("rollback")}: ${r.data.version}`);
      changesPage();
    } }, t("rollback")));
}

/** One change: who, what, its checks, its approvals, and the steps the user may take. */
async function changePage(n) {
  const c = await must("GET", `/v1/deploy/changes/${n}`);
  const me = session().name;
  const step = (name, cls) => h("button", { class: cls, id: name, onclick: () => changeStep(c.id, name) }, t(name));
  const steps = [];
  if (c.status === "pending" && may("approver") && c.author !== me) steps.push(step("approve", "primary"));
  if ((c.status === "pending" || c.status === "approved" || c.status === "checks_failed") && (may("approver") || c.author === me)) steps.push(step("reject", "danger"));
  if (c.status === "approved" && may("author")) steps.push(step("deploy", "primary"));
  const files = ["added", "changed", "removed"].flatMap((k) => (c.files[k] || []).map((f) => `${k}: ${f}`));
  show(h("p", {}, h("a", { href: "#changes" }, `← ${t("back")}`)),
    h("h1", {}, t("change.title", { n: c.id }), " ", pill(c.status)),
    table(["version", "author", "time", "comment", "files", "approvals"], [[c.version, c.author, when(c.time), c.comment, files.join(", "),
      c.approvals.map((a) => `${a.user} (${when(a.time)}) ${a.comment}`).join("; ")]]),
    steps.length ? h("div", { class: "card row" }, h("input", { id: "step-comment", class: "grow", placeholder: t("comment") }), steps) : null,
    checksView(c.checks));
}

/** Approve, reject or deploy a change, with the comment typed beside the buttons. */
async function changeStep(id, name) {
  const comment = (document.getElementById("step-comment") || {}).value || "";
  const r = await api("POST", `/v1/deploy/changes/${id}/${name}`, { comment });
  if (r.status !== 200) return toast(r.data.error || String(r.status), true);
  toast(`${t(name)}: ${t("done")}`);
  changePage(id);
}

// ---- The audit log -----------------------------------------------------------------------------

/** The audit log, newest first: who did what to which version, and why a step was refused. */
async function auditPage() {
  const a = await api("GET", "/v1/audit");
  if (a.status !== 200) return show(h("h1", {}, t("audit.title")), h("p", { class: "muted" }, t("rules.nodeploy")));
  const detail = (e) => [e.comment, e.reason, e.diagnostics && e.diagnostics.join("\n")].filter(Boolean).join(" — ");
  const rows = a.data.entries.slice().reverse().map((e) => [
    e.seq, when(e.ts), e.step, h("span", { class: `pill ${e.outcome === "ok" ? "approved" : "refused"}` }, e.outcome),
    `${e.user} (${e.role})`, e.change ?? "", e.version || "", detail(e),
  ]);
  show(h("h1", {}, t("audit.title")),
    table(["#", "time", "audit.step", "audit.outcome", "user", "change", "version", "audit.detail"], rows, { id: "audit" }));
}

// ---- One subscriber's story --------------------------------------------------------------------

/** Explain: the subscriber as the live engine holds them (the number always comes back masked). */
function explainPage() {
  const number = h("input", { id: "msisdn", inputmode: "numeric", placeholder: "13800138000" });
  const out = h("div", { id: "story" });
  const go = async (e) => {
    e.preventDefault();
    const r = await api("GET", `/v1/explain/${encodeURIComponent(number.value.trim())}`);
    out.replaceChildren(r.status === 200 ? h("pre", {}, JSON.stringify(r.data, null, 2))
      : h("p", { class: "error" }, (r.data && r.data.error) || String(r.status)));
  };
  show(h("h1", {}, t("explain.title")),
    h("form", { class: "row", onsubmit: go }, t("explain.number"), number, h("button", { class: "primary", type: "submit" }, t("explain.go"))),
    h("p", { class: "muted" }, t("explain.masked")), out);
}

// ---- Routing -----------------------------------------------------------------------------------

/** Draws the page the #fragment names (the login page when no one is logged in). */
async function route() {
  const s = session();
  document.getElementById("nav").hidden = !s;
  document.getElementById("logout").hidden = !s;
  document.getElementById("who").textContent = s ? `${s.name} · ${s.role}` : "";
  if (!s) return loginPage();
  const [page, arg] = decodeURIComponent(location.hash.slice(1)).split(/\/(.*)/s);
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#${page || "campaigns"}`);
  try {
    switch (page) {
      case "rules": return await rulesPage(arg);
      case "changes": return await (arg ? changePage(arg) : changesPage());
      case "audit": return await auditPage();
      case "explain": return explainPage();
      default: return await campaignsPage();
    }
  } catch (e) {
    show(h("p", { class: "error" }, `${t("error")}: ${e.message}`));
  }
}

document.getElementById("lang").addEventListener("click", () => { setLang(lang === "zh" ? "en" : "zh"); route(); });
document.getElementById("logout").addEventListener("click", logout);
window.addEventListener("hashchange", route);
setLang(lang);
route();
