// Drives otpd's try-it page in Debian's Chromium (playwright-core): a
// phone number in, a code by SMS (on the embedded default the page shows
// the simulator's copy; with a real SMSC the code is read from smscsim's
// API, as the phone would show it), a wrong code denied with the attempts
// left, the right one approved; every control has a label; no console
// error and no content security policy violation. Screenshots go to
// ARTIFACTS. Prints one JSON line per step; exits 1 on the first failure.
//
// Environment: OTPD_URL, SIM_URL (smscsim's HTTP API), EMBEDDED ("1": the
// page must show the simulator's copy), PHONE, ARTIFACTS, CHROMIUM
// (default /usr/bin/chromium).
"use strict";

const { WAIT, log, check, masked, strictCSP, json, unlabelled, run } = require("./browser-common");

const OTPD = process.env.OTPD_URL;
const SIM = process.env.SIM_URL;
const EMBEDDED = process.env.EMBEDDED === "1";
const PHONE = process.env.PHONE;

// smsCode is the code of the last SMS smscsim holds for PHONE.
async function smsCode() {
  const { status, body } = await json("GET", SIM + "/api/messages/latest?to=" + encodeURIComponent(PHONE.replace(/^\+/, "")) + "&wait=20s");
  check(status === 200 && body && /^\d{4,10}$/.test(body.code || ""), "smscsim's latest SMS to the number: " + status + " " + JSON.stringify(body));
  check(body.text.includes(body.code), "the SMS text does not hold its code: " + body.text);
  return body.code;
}

run({ name: "otpd-demo", viewport: { width: 1200, height: 800 } }, async ({ page, shot }) => {
  const resp = await page.goto(OTPD + "/demo");
  check(resp.status() === 200, "GET /demo: " + resp.status());
  const csp = resp.headers()["content-security-policy"] || "";
  check(strictCSP(csp), "CSP of /demo: " + csp);
  const realWarning = (await page.locator("main > p").first().textContent()).includes("sends real SMS");
  check(realWarning === !EMBEDDED, "the real-SMS note: " + realWarning);
  const missing = await unlabelled(page);
  check(missing.length === 0, "controls without a label: " + missing.join(", "));
  log("loaded", { csp });

  // The number in, a code out.
  await page.fill("#phone", PHONE);
  await page.click("#send button[type=submit]");
  await page.locator("#verify").waitFor({ state: "visible", timeout: WAIT });
  const sentTo = await page.locator("#sent-to").textContent();
  const m = /A code went to (\+\d+\*+\d+); (\d+) attempts\./.exec(sentTo);
  check(m && m[1] === masked(PHONE), "sent to: " + sentTo);
  const attempts = Number(m[2]);
  check(await page.evaluate(() => document.activeElement.id) === "code", "the code field has no focus");
  let code;
  if (EMBEDDED) {
    await page.locator("#sim").waitFor({ state: "visible", timeout: WAIT });
    code = (await page.locator("#sim-code").textContent()).trim();
    check((await page.locator("#sim-text").textContent()).includes(code), "the simulator's copy does not hold its code");
    check(code === (await smsCode()), "the page's copy is not the simulator's SMS");
  } else {
    check((await page.locator("#sim").count()) === 0, "a simulator's copy with a real SMSC");
    code = await smsCode();
  }
  log("sent", { attempts });
  await shot("demo-sent");

  // A wrong code: denied, one attempt fewer.
  const wrong = code.slice(0, -1) + String((Number(code.slice(-1)) + 1) % 10);
  await page.fill("#code", wrong);
  await page.click("#verify button[type=submit]");
  const denied = page.locator("#result.denied");
  await denied.waitFor({ timeout: WAIT });
  const dt = await denied.textContent();
  check(dt === "Denied: wrong code, " + (attempts - 1) + " attempts left.", "denied: " + dt);
  check(await page.locator("#verify").isVisible(), "the code form went away after a wrong code");
  log("denied", { text: dt });
  await shot("demo-denied");

  // The right one: approved.
  await page.fill("#code", code);
  await page.click("#verify button[type=submit]");
  const approved = page.locator("#result.approved");
  await approved.waitFor({ timeout: WAIT });
  check((await approved.textContent()).startsWith("Approved"), "approved: " + (await approved.textContent()));
  check(await page.locator("#verify").isHidden(), "the code form stays after approval");
  log("approved");
  await shot("demo-approved");
});
