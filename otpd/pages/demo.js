// otpd's try-it page: a code by SMS, then the code typed back.
"use strict";

const $ = (id) => document.getElementById(id);
let challenge = null;

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), credentials: "same-origin" });
  let j = {};
  try { j = await r.json(); } catch (e) { /* not JSON */ }
  return { status: r.status, body: j };
}

function result(text, cls) {
  const p = $("result");
  p.textContent = text;
  p.className = cls || "";
}

$("send").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  result("Sending…");
  const r = await post("/demo/api/otp", { phone: $("phone").value.trim() });
  if (r.status !== 201) {
    result((r.body.error && r.body.error.message) || "Sending failed (" + r.status + ")", "error");
    return;
  }
  challenge = r.body;
  $("sent-to").textContent = "A code went to " + challenge.phone + "; " + challenge.attempts_left + " attempts.";
  $("verify").hidden = false;
  $("code").value = "";
  $("code").focus();
  result("");
  const sim = $("sim");
  if (sim && r.body.sms) {
    sim.hidden = false;
    $("sim-from").textContent = "From " + r.body.sms.from;
    $("sim-text").textContent = r.body.sms.text;
    $("sim-code").textContent = r.body.sms.code;
  }
});

$("verify").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!challenge) return;
  const r = await post("/demo/api/verify", { id: challenge.id, code: $("code").value.trim() });
  if (r.status === 200 && r.body.status === "approved") {
    result("Approved: the code is right.", "approved");
    $("verify").hidden = true;
  } else if (r.status === 200) {
    result("Denied: wrong code, " + r.body.attempts_left + " attempts left.", "denied");
    $("code").select();
  } else {
    result("Denied: " + ((r.body.error && r.body.error.message) || "status " + r.status) + ".", "denied");
  }
});
