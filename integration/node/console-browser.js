// Drives otpd's operator console in Debian's Chromium (playwright-core),
// with authentication on: the login form refuses a wrong key and a key
// without the admin scope, takes the admin key and keeps only an HttpOnly
// SameSite=Strict session cookie; the binds show; an OTP sent through the
// API shows its delivery reports live and the counts follow; the status and
// prefix filters work; a webhook whose receiver refuses shows in the
// webhook failures table, its URL without the query string; every control
// has a label; logout ends the session; no console error and no content
// security policy violation. Screenshots go to ARTIFACTS. Prints one JSON
// line per step; exits 1 on the first failure.
//
// Environment: OTPD_URL, ADMIN_KEY, OTP_KEY (scope otp only), PHONE,
// PHONE_BAD (a number smscsim answers UNDELIV for), PHONE_HOOK, HOOK_URL
// (a callback URL nothing listens on, with a query string), ARTIFACTS,
// CHROMIUM (default /usr/bin/chromium).
"use strict";

const { WAIT, log, check, masked, strictCSP, json, unlabelled, run } = require("./browser-common");

const OTPD = process.env.OTPD_URL;
const ADMIN_KEY = process.env.ADMIN_KEY;
const OTP_KEY = process.env.OTP_KEY;
const PHONE = process.env.PHONE;
const PHONE_BAD = process.env.PHONE_BAD;
const PHONE_HOOK = process.env.PHONE_HOOK;
const HOOK_URL = process.env.HOOK_URL;

const api = (method, p, body) => json(method, OTPD + p, body, { Authorization: "Bearer " + OTP_KEY });

// The refused logins answer 401 and 403 on purpose; Chromium logs the
// status of such a page load as an error, the only one allowed.
let refusing = false;
const allowError = (text) => refusing && /status of 40[13]/.test(text);

// The controls that need a label: a hidden input (the logout form's CSRF
// token) is none.
const CONTROLS = "input:not([type=hidden]), select, textarea";

run({ name: "otpd-console", allowError }, async ({ ctx, page, shot }) => {
  const stat = (dl, name) => page.evaluate(([dl, name]) => {
    for (const d of document.querySelectorAll("#" + dl + " > div")) {
      if (d.querySelector("dt").textContent === name) return d.querySelector("dd").textContent;
    }
    return null;
  }, [dl, name]);

  // The login form, with the policy.
  let resp = await page.goto(OTPD + "/console");
  const csp = resp.headers()["content-security-policy"] || "";
  check(strictCSP(csp), "CSP of the login page: " + csp);
  await page.locator("form[action='/console/login'] #key").waitFor({ timeout: WAIT });
  let missing = await unlabelled(page, CONTROLS);
  check(missing.length === 0, "login controls without a label: " + missing.join(", "));
  log("login-form", { csp });

  // A wrong key, then a key without the admin scope.
  refusing = true;
  await page.fill("#key", "otpd_not-a-key");
  await Promise.all([page.waitForURL(OTPD + "/console/login"), page.click("form[action='/console/login'] button[type=submit]")]);
  let err = (await page.locator("#login-error").textContent()).trim();
  check(/Unknown, revoked or expired/.test(err), "wrong key: " + err);
  check((await ctx.cookies()).length === 0, "a cookie after a wrong key");
  log("wrong-key", { error: err });
  await shot("console-login");
  await page.fill("#key", OTP_KEY);
  await page.click("form[action='/console/login'] button[type=submit]");
  await page.locator("#login-error", { hasText: "admin scope" }).waitFor({ timeout: WAIT });
  check((await ctx.cookies()).length === 0, "a cookie after a non-admin key");
  log("non-admin-key");
  refusing = false;

  // The admin key: the console, and a session cookie that scripts cannot
  // read and other sites' requests do not carry.
  await page.fill("#key", ADMIN_KEY);
  await page.click("form[action='/console/login'] button[type=submit]");
  await page.locator("#logout").waitFor({ timeout: WAIT });
  const cookies = await ctx.cookies();
  check(cookies.length === 1, "cookies after login: " + JSON.stringify(cookies));
  const ck = cookies[0];
  check(ck.name === "otpd_console" && ck.httpOnly === true && ck.sameSite === "Strict" && ck.path === "/console" && !ck.value.includes(ADMIN_KEY),
    "session cookie: " + JSON.stringify(Object.assign({}, ck, { value: ck.value.length + " chars" })));
  check((await page.evaluate(() => document.cookie)) === "", "document.cookie reads the session");
  resp = await page.goto(OTPD + "/console");
  const ccsp = resp.headers()["content-security-policy"] || "";
  check(ccsp === csp, "CSP of the console: " + ccsp);
  log("logged-in", { cookie: { httpOnly: ck.httpOnly, sameSite: ck.sameSite } });

  // The binds to smscsim, and the stream.
  await page.locator("#stream-state", { hasText: "live" }).waitFor({ timeout: WAIT });
  await page.locator("#binds dd", { hasText: /^[1-9]\d* of [1-9]/ }).waitFor({ timeout: WAIT });
  check((await stat("binds", "state")) === "up", "bind state " + (await stat("binds", "state")));
  missing = await unlabelled(page, CONTROLS);
  check(missing.length === 0, "console controls without a label: " + missing.join(", "));
  await page.locator("#hooks-empty", { hasText: "No failing webhook deliveries" }).waitFor({ timeout: WAIT });
  check(await page.locator("#hooks-table").isHidden(), "the webhook table shows with nothing in it");
  const createdBefore = Number(await stat("challenges", "created"));
  log("binds", { up: await stat("binds", "binds up") });
  await shot("console");

  // An OTP through the API with the otp key: its reports arrive live,
  // newest first, and the counts follow.
  let r = await api("POST", "/v1/otp", { phone: PHONE });
  check(r.status === 201, "POST /v1/otp: " + r.status + " " + JSON.stringify(r.body));
  const rowsOf = (phone, state) => page.locator("#reports tr[data-state='" + state + "']", { has: page.locator("td", { hasText: masked(phone) }) });
  // Its "delivered" (the "submitted" shows only when it was published
  // first: a stream never moves a message back).
  await rowsOf(PHONE, "delivered").first().waitFor({ timeout: WAIT });
  const first = (await page.locator("#reports tr").first().getAttribute("data-state"));
  check(first === "delivered", "newest first: the first report is " + first);
  await page.waitForFunction(([n]) => {
    for (const d of document.querySelectorAll("#challenges > div")) {
      if (d.querySelector("dt").textContent === "created") return Number(d.querySelector("dd").textContent) >= n;
    }
    return false;
  }, [createdBefore + 1], { timeout: WAIT });
  await page.locator("#conversion td", { hasText: "+49" }).waitFor({ timeout: WAIT });
  log("report", { created: await stat("challenges", "created"), delivered: await stat("messages", "delivered") });

  // One that smscsim cannot deliver.
  r = await api("POST", "/v1/otp", { phone: PHONE_BAD });
  check(r.status === 201, "POST /v1/otp (undeliverable): " + r.status + " " + JSON.stringify(r.body));
  await rowsOf(PHONE_BAD, "undeliverable").first().waitFor({ timeout: WAIT });
  log("undeliverable");

  // The filters: by state, by prefix, both cleared.
  const shown = () => page.evaluate(() => [...document.querySelectorAll("#reports tr")].filter((tr) => !tr.hidden)
    .map((tr) => ({ state: tr.dataset.state, phone: tr.dataset.phone })));
  await page.selectOption("#f-status", "undeliverable");
  let rows = await shown();
  check(rows.length >= 1 && rows.every((x) => x.state === "undeliverable"), "status filter undeliverable: " + JSON.stringify(rows));
  await page.selectOption("#f-status", "delivered");
  rows = await shown();
  check(rows.length >= 1 && rows.every((x) => x.state === "delivered" && x.phone === masked(PHONE)), "status filter delivered: " + JSON.stringify(rows));
  await page.selectOption("#f-status", "");
  await page.fill("#f-prefix", PHONE_BAD.slice(0, 6));
  rows = await shown();
  // At least its final report (its "submitted" is dropped when the receipt
  // was published first: a stream never moves a message back).
  check(rows.length >= 1 && rows.every((x) => x.phone.startsWith(PHONE_BAD.slice(0, 6))), "prefix filter: " + JSON.stringify(rows));
  await page.fill("#f-prefix", PHONE_BAD.slice(1, 6)); // without the +
  check((await shown()).length === rows.length, "prefix filter without +");
  await page.fill("#f-prefix", "");
  check((await shown()).length === (await page.locator("#reports tr").count()), "filters cleared");
  log("filters");
  await shot("console-reports");

  // A webhook whose receiver refuses: listed, its URL without the query.
  r = await api("POST", "/v1/otp", { phone: PHONE_HOOK, callback_url: HOOK_URL });
  check(r.status === 201, "POST /v1/otp with callback_url: " + r.status + " " + JSON.stringify(r.body));
  const hookReport = rowsOf(PHONE_HOOK, "delivered").first();
  await hookReport.waitFor({ timeout: WAIT });
  const msgID = (await hookReport.locator("td").nth(4).textContent()).trim();
  const hookRow = page.locator("#webhooks tr[data-message='" + msgID + "']");
  await hookRow.waitFor({ timeout: WAIT });
  check(await page.locator("#hooks-empty").isHidden(), "the empty text shows beside a failure");
  const cells = await hookRow.locator("td").allTextContents();
  const bare = HOOK_URL.split("?")[0];
  check(cells[1] === msgID && cells[2] === "webhook" && cells[3] === "delivered" && cells[4] === "pending" && Number(cells[5]) >= 1 &&
    cells[6] !== "—" && cells[7] === bare && /refused/.test(cells[8]), "webhook row: " + JSON.stringify(cells));
  const text = await page.locator("#hooks-table").textContent();
  check(!text.includes(HOOK_URL.split("?")[1]), "the table shows the URL's query: " + text);
  const headers = await page.locator("#hooks-table thead th[scope=col]").allTextContents();
  check(headers.includes("Message") && headers.includes("Last error") && headers.includes("Next attempt"), "table headers " + headers);
  check(Number(await stat("hook-counts", "pending")) >= 1, "pending count " + (await stat("hook-counts", "pending")));
  await hookRow.scrollIntoViewIfNeeded();
  log("webhook", { cells });
  await shot("console-webhooks");

  // Logout: the login form again, the session gone for the API too.
  await page.click("#logout");
  await page.locator("form[action='/console/login'] #key").waitFor({ timeout: WAIT });
  check((await ctx.cookies()).length === 0, "a cookie after logout");
  refusing = true;
  const st = await page.evaluate(async () => (await fetch("/console/api/state")).status);
  refusing = false;
  check(st === 401, "state after logout: " + st);
  log("logged-out");
});
