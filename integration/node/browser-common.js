// What the Playwright scripts (inbox-browser.js, console-browser.js,
// demo-browser.js) share: JSON-line logging, checks, a JSON fetch helper,
// polling, and one run of Debian's Chromium with a fresh user-data-dir that
// counts console errors, page errors and content security policy violations
// as failures. A script's own checks stay in the script.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const WAIT = 30000; // a guard against hangs, not a timing assertion

function log(event, extra) { console.log(JSON.stringify(Object.assign({ event }, extra || {}))); }

function check(ok, what) { if (!ok) throw new Error(what); }

// masked is a German mobile number as otpd shows it: +49 and 3 digits,
// ****, the last 3.
function masked(phone) { return phone.slice(0, 6) + "****" + phone.slice(-3); }

// strictCSP says whether otpd's policy forbids everything by default and
// scripts other than its own, inline ones included.
function strictCSP(csp) {
  return csp.includes("default-src 'none'") && csp.includes("script-src 'self'") && !csp.includes("unsafe-inline");
}

// json sends body (if any) as JSON and parses the answer; an empty answer
// is body null.
async function json(method, url, body, headers) {
  const opt = { method, headers: Object.assign({}, headers) };
  if (body !== undefined) { opt.headers["Content-Type"] = "application/json"; opt.body = JSON.stringify(body); }
  const r = await fetch(url, opt);
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}

// until polls fn until it returns something truthy, and returns that.
async function until(what, fn) {
  const end = Date.now() + WAIT;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("timed out waiting for " + what);
}

// unlabelled lists the ids (else names) of the controls matching selector
// that have no label and no aria-label.
function unlabelled(page, selector) {
  return page.evaluate((sel) => [...document.querySelectorAll(sel)]
    .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label")).map((el) => el.id || el.name),
  selector || "input, select, textarea");
}

// run starts Chromium and calls body({ ctx, page, shot }); after body, no
// console error, page error or policy violation may have been seen. It
// prints {"event":"done"} on success, else {"event":"fail"} and exits 1.
//
// opts: name (of the user-data-dir), viewport, allowError(text) (true: a
// console error expected at this point, logged and not counted).
function run(opts, body) {
  main(opts, body).catch((e) => { log("fail", { error: String(e && e.stack || e) }); process.exit(1); });
}

async function main(opts, body) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), opts.name + "-chromium-"));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: opts.viewport || { width: 1400, height: 900 },
  });
  const problems = [];
  try {
    // A policy violation is reported to the page as an event: say it as a
    // console error, which is counted below (Chromium logs one as well).
    await ctx.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) =>
        console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI));
    });
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      if (opts.allowError && opts.allowError(m.text())) { log("expected-error", { text: m.text() }); return; }
      problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));
    const shot = async (name) => { await page.screenshot({ path: path.join(process.env.ARTIFACTS, name + ".png"), fullPage: true }); log("screenshot", { name }); };

    await body({ ctx, page, shot });

    check(problems.length === 0, "console errors: " + problems.join(" | "));
    log("done");
  } finally {
    await ctx.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

module.exports = { WAIT, log, check, masked, strictCSP, json, until, unlabelled, run };
