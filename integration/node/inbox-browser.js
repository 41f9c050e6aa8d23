// Drives smscsim's inbox page in Debian's Chromium (playwright-core):
// an OTP sent through otpd shows in the inbox live, with its code
// highlighted; its receipt, sent from the page, changes its state there and
// in otpd; the faults, MO, search and clear buttons work; every control
// has a label; no content security policy violation. Screenshots go to
// ARTIFACTS. Prints one JSON line per step; exits 1 on the first failure.
//
// Environment: SIM_URL, OTPD_URL, PHONE, NS (the system_id otpd binds
// with), ARTIFACTS, CHROMIUM (default /usr/bin/chromium).
"use strict";

const { WAIT, log, check, json, until, unlabelled, run } = require("./browser-common");

const SIM = process.env.SIM_URL;
const OTPD = process.env.OTPD_URL;
const PHONE = process.env.PHONE;
const NS = process.env.NS;

run({ name: "smscsim" }, async ({ page, shot }) => {
  const resp = await page.goto(SIM + "/?system_id=" + encodeURIComponent(NS));
  const csp = resp.headers()["content-security-policy"] || "";
  check(csp.includes("default-src 'none'"), "no CSP on the page: " + csp);
  await page.locator("#conn", { hasText: "live" }).waitFor({ timeout: WAIT });
  log("loaded", { csp });

  // Every control has a label (an accessible name).
  const missing = await unlabelled(page);
  check(missing.length === 0, "controls without a label: " + missing.join(", "));

  // An OTP through otpd: it shows up live, newest first, code marked.
  const created = await json("POST", OTPD + "/v1/otp", { phone: PHONE });
  check(created.status === 201, "POST /v1/otp: " + created.status + " " + JSON.stringify(created.body));
  const digits = PHONE.replace(/^\+/, "");
  const row = page.locator("#messages tbody tr", { has: page.locator("td.to", { hasText: digits }) }).first();
  await row.waitFor({ timeout: WAIT });
  const code = (await row.locator("td.text mark").first().textContent()).trim();
  check(/^\d{4,10}$/.test(code), "marked code " + code);
  check((await row.locator("td.state").textContent()).trim() === "held", "state before the receipt: " + (await row.locator("td.state").textContent()));
  const firstTo = (await page.locator("#messages tbody tr td.to").first().textContent()).trim();
  check(firstTo === digits, "newest first: the first row is to " + firstTo);
  log("arrived", { code });
  await shot("inbox");

  // The detail view, opened with the keyboard.
  await row.locator("td.id button").focus();
  await page.keyboard.press("Enter");
  await page.locator("#detail").waitFor({ state: "visible", timeout: WAIT });
  const fields = await page.locator("#d-fields").textContent();
  check(fields.includes("destination_addr") && fields.includes(digits) && fields.includes("registered_delivery"), "detail fields: " + fields);
  const hex = await page.locator("#d-pdus pre").first().textContent();
  check(/^0000 {2}[0-9a-f]{2} /.test(hex) && hex.includes(" 00 00 00 04"), "PDU hex (submit_sm): " + hex.slice(0, 80));
  log("detail");
  await shot("detail");

  // A receipt from the page: UNDELIV, seen in the inbox and by otpd.
  await page.selectOption("#r-stat", "UNDELIV");
  await page.click("#receipt-form button[type=submit]");
  await page.locator("#messages tbody tr", { has: page.locator("td.to", { hasText: digits }) }).first()
    .locator("td.state", { hasText: "UNDELIV" }).waitFor({ timeout: WAIT });
  const id = created.body.id;
  const otp = await until("otpd to see the receipt", async () => {
    const r = await json("GET", OTPD + "/v1/otp/" + id);
    return r.body.delivery && r.body.delivery.state === "undeliverable" ? r.body : null;
  });
  log("receipt", { stat: otp.delivery.stat });
  await shot("receipt");

  // The code the page marked is the challenge's.
  const v = await json("POST", OTPD + "/v1/otp/" + id + "/verify", { code });
  check(v.status === 200 && v.body.status === "approved", "verify with the marked code: " + JSON.stringify(v.body));
  log("verified");

  // Faults: read, change, saved.
  await page.click("#open-faults");
  await page.locator("#faults-json").waitFor({ state: "visible", timeout: WAIT });
  const faults = JSON.parse(await page.inputValue("#faults-json"));
  check("error_rate" in faults, "faults dialog: " + JSON.stringify(faults));
  faults.error_rate = 0.25;
  await page.fill("#faults-json", JSON.stringify(faults));
  await page.click("#faults-form button[type=submit]");
  await page.locator("#faults-dialog").waitFor({ state: "hidden", timeout: WAIT });
  const f = await json("GET", SIM + "/api/faults");
  check(f.body.error_rate === 0.25, "faults after saving: " + JSON.stringify(f.body));
  await json("PUT", SIM + "/api/faults", {});
  log("faults");

  // A mobile-originated message to otpd's bind.
  await page.click("#open-mo");
  await page.fill("#mo-from", PHONE);
  await page.fill("#mo-to", "OTPD");
  await page.fill("#mo-text", "STOP");
  check((await page.inputValue("#mo-sys")) === NS, "MO system_id not taken from the namespace");
  await page.click("#mo-form button[type=submit]");
  await page.locator("#status", { hasText: "MO delivered" }).waitFor({ timeout: WAIT });
  log("mo");

  // Search.
  await page.fill("#q", "no such message");
  await page.locator("#empty").waitFor({ state: "visible", timeout: WAIT });
  await page.fill("#q", code);
  check((await page.locator("#messages tbody tr").count()) === 1, "search by code");
  await page.fill("#q", "");
  log("search");

  // Clear: the namespace's messages are gone, from the page and the API.
  await page.click("#clear");
  await page.locator("#empty").waitFor({ state: "visible", timeout: WAIT });
  const left = await json("GET", SIM + "/api/messages?system_id=" + encodeURIComponent(NS));
  check(left.body.messages.length === 0, "messages left after clear: " + left.body.messages.length);
  await shot("cleared");
  log("cleared");
});
