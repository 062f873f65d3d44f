// Drives the tidings console in a real headless Chromium (Debian's /usr/bin/chromium, through
// puppeteer-core) through an operator's day, as issue 21 asks: log in as an author, open a rule
// file, plant an error and see the diagnostic at its line, fix it, run the checks, submit; log in
// as an approver, approve, deploy; feed events and see the funnel move; roll back and see the
// live version change.
//
// The page is reached through a small reverse proxy started here that serves tidings under
// BASE and strips the prefix before passing a request on (tidings runs with the same
// `[api] base_path`): every URL the page builds must carry the prefix to get through.
//
// Talks to the test that started it over stdio: writes `FEED` and waits for a line `fed` on
// stdin (the test feeds the engine's stdin), writes `RESULT {json}` at the end. Screenshots go
// to SHOTS. Input (environment): TIDINGS (http://127.0.0.1:PORT), BASE (/tidings), AUTHOR and
// AUTHOR_SECRET, APPROVER and APPROVER_SECRET, FILE (shop.yaml), PLANT_FROM/PLANT_TO (the
// error), CHANGE_FROM/CHANGE_TO (the real change), CAMPAIGN (its funnel is watched), SHOTS.
"use strict";

const http = require("http");
const fs = require("fs");
const path = require("path");
const readline = require("readline");
const puppeteer = require("puppeteer-core");

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const BASE = env("BASE");
const TIDINGS = new URL(env("TIDINGS"));
const SHOTS = env("SHOTS");
const result = { steps: [] };
const step = (s) => {
  result.steps.push(s);
  console.log(`STEP ${s}`);
};

/** A reverse proxy serving tidings under BASE, the prefix taken off (404 without it). */
function startProxy() {
  const server = http.createServer((req, res) => {
    if (!req.url.startsWith(`${BASE}/`)) {
      res.writeHead(404);
      return res.end("not under the base path");
    }
    const fwd = http.request({ host: TIDINGS.hostname, port: TIDINGS.port, method: req.method,
      path: req.url.slice(BASE.length), headers: req.headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    fwd.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(fwd);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

/** Lines the test writes on stdin, one awaited at a time. */
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function askToFeed() {
  console.log("FEED");
  const { value } = await lines.next();
  if (value !== "fed") throw new Error(`expected "fed" from the test, got ${value}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `console-${name}.png`) });
}

async function login(page, url, name, secret) {
  await page.goto(url);
  await page.waitForSelector("#login-user");
  await page.type("#login-user", name);
  await page.type("#login-secret", secret);
  await page.click("#login-go");
  await page.waitForFunction((n) => document.getElementById("who").textContent.startsWith(n), {}, name);
}

async function logout(page) {
  await page.click("#logout");
  await page.waitForSelector("#login-user");
}

/** Replaces the editor's text as typing would (an input event), then waits for the check. */
async function edit(page, from, to) {
  await page.$eval("#source", (ta, from, to) => {
    if (!ta.value.includes(from)) throw new Error(`the file has no ${from}`);
    ta.value = ta.value.replace(from, to);
    ta.dispatchEvent(new Event("input", { bubbles: true }));
  }, from, to);
}

/** The funnel's count of `stage` for the campaign as the page draws it (null: no chart). */
async function funnelCount(page, campaign, stage) {
  return page.evaluate((c, s) => {
    const card = [...document.querySelectorAll("#funnel [data-campaign]")].find((e) => e.dataset.campaign === c);
    const bar = card && card.querySelector(`rect[data-stage="${s}"]`);
    return bar ? Number(bar.dataset.value) : null;
  }, campaign, stage);
}

async function main() {
  const proxy = await startProxy();
  const url = `http://127.0.0.1:${proxy.address().port}${BASE}/console/`;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [...(root ? ["--no-sandbox"] : []), "--lang=en-US", "--disable-gpu", "--window-size=1200,720"],
    defaultViewport: { width: 1200, height: 720 },
  });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => { result.pageErrors = (result.pageErrors || []).concat(String(e)); });
    page.setDefaultTimeout(30000);

    // 1. The author logs in; the campaigns page with its funnel (or "no funnel data").
    await page.goto(url);
    await page.waitForSelector("#login-user");
    await shot(page, "login");
    await login(page, url, env("AUTHOR"), env("AUTHOR_SECRET"));
    await page.waitForSelector("#funnel");
    const funnelStatus = await page.evaluate(async (b) => (await fetch(`${b}/v1/funnel`, {
      headers: { Authorization: JSON.parse(sessionStorage.getItem("tidings.session")).auth } })).status, BASE);
    result.funnel = { status: funnelStatus };
    const campaign = env("CAMPAIGN");
    if (funnelStatus === 200) result.funnel.before = await funnelCount(page, campaign, "triggered");
    else result.funnel.none_shown = !!(await page.$("#funnel-none"));
    step("logged in as author");

    // 2. Open the rule file, plant an error, see the diagnostic at its line.
    const file = env("FILE");
    await page.goto(`${url}#rules/${encodeURIComponent(file)}`);
    await page.waitForSelector("#source");
    await page.waitForSelector("#diag-status.good");
    await edit(page, env("PLANT_FROM"), env("PLANT_TO"));
    await page.waitForSelector("#gutter div.error");
    result.diagnostic = await page.evaluate(() => ({
      gutter: [...document.querySelectorAll("#gutter div.error")].map((d) => Number(d.dataset.line)),
      listed: [...document.querySelectorAll("#diags li.error")].map((li) => ({ line: Number(li.dataset.line), code: li.dataset.code, text: li.textContent })),
    }));
    await shot(page, "editor-error");
    step("diagnostic shown");

    // 3. Fix it (and make the real change); the marks go; run the checks; submit.
    await edit(page, env("PLANT_TO"), env("PLANT_FROM"));
    await edit(page, env("CHANGE_FROM"), env("CHANGE_TO"));
    await page.waitForSelector("#diag-status.good");
    result.fixed_marks = await page.$$eval("#gutter div.error", (d) => d.length);
    await page.click("#try");
    await page.waitForSelector("#checks-tests");
    result.tried = await page.$eval("#checks", (c) => c.textContent);
    result.reload = await page.$eval("#checks-reload", (c) => c.textContent);
    await shot(page, "editor-checks");
    await page.type("#comment", "感谢短信加【新】标记 (console test)");
    await page.click("#submit");
    await page.waitForFunction(() => /^#changes\/\d+$/.test(location.hash));
    await page.waitForSelector('[data-status="pending"]');
    result.change = Number((await page.evaluate(() => location.hash)).split("/")[1]);
    step(`submitted change ${result.change}`);

    // 4. The approver logs in, approves and deploys.
    await logout(page);
    await login(page, url, env("APPROVER"), env("APPROVER_SECRET"));
    await page.goto(`${url}#changes/${result.change}`);
    await page.waitForSelector("#approve");
    await shot(page, "change");
    await page.type("#step-comment", "看过了");
    await page.click("#approve");
    await page.waitForSelector('h1 [data-status="approved"]');
    await page.click("#deploy");
    await page.waitForSelector('h1 [data-status="deployed"]');
    await page.goto(`${url}#changes`);
    await page.waitForSelector("#live-version");
    result.live_after_deploy = await page.$eval("#live-version", (e) => e.textContent);
    step("approved and deployed");

    // 5. Events are fed; the funnel moves.
    await askToFeed();
    await page.goto(`${url}#campaigns`);
    await page.waitForSelector("#funnel");
    if (funnelStatus === 200) {
      const t0 = Date.now();
      for (;;) {
        const now = await funnelCount(page, campaign, "triggered");
        if (now !== null && now > (result.funnel.before || 0)) {
          result.funnel.after = now;
          break;
        }
        if (Date.now() - t0 > 20000) throw new Error(`the funnel of ${campaign} did not move (${now})`);
        await new Promise((ok) => setTimeout(ok, 500));
        await page.reload();
        await page.waitForSelector("#funnel");
      }
      step("funnel moved");
    }
    // The journeys in progress, by step.
    await page.waitForSelector("#journeys-now");
    result.journeys = await page.$eval("#journeys-now", (e) => e.textContent);
    await shot(page, "campaigns");

    // 6. Roll back to the version before; the live version changes.
    await page.goto(`${url}#changes`);
    await page.waitForSelector("#rollback");
    result.rollback_to = await page.$eval("#rollback-to", (s) => s.value);
    await page.type("#rollback-comment", "回滚 (console test)");
    await page.click("#rollback");
    await page.waitForFunction((v) => document.getElementById("live-version")?.textContent === v, {}, result.rollback_to);
    result.live_after_rollback = await page.$eval("#live-version", (e) => e.textContent);
    await shot(page, "changes");
    step("rolled back");

    // 7. The audit log has every step; the pages in Chinese.
    await page.goto(`${url}#audit`);
    await page.waitForSelector("#audit tbody tr");
    result.audit = await page.$$eval("#audit tbody tr", (rows) => rows.map((r) => `${r.cells[2].textContent} ${r.cells[3].textContent}`));
    await shot(page, "audit");
    await page.click("#lang");
    await page.waitForFunction(() => document.documentElement.lang === "zh-CN");
    await page.goto(`${url}#campaigns`);
    await page.waitForSelector("#funnel");
    result.zh_nav = await page.$eval("nav", (n) => n.textContent.replace(/\s+/g, " ").trim());
    await shot(page, "campaigns-zh");
    step("done");
  } finally {
    await browser.close();
    proxy.close();
  }
}

main().then(
  () => { console.log(`RESULT ${JSON.stringify(result)}`); process.exit(0); },
  (e) => { result.error = String(e && e.stack || e); console.log(`RESULT ${JSON.stringify(result)}`); process.exit(1); },
);
