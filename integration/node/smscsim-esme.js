#!/usr/bin/env node
// smscsim-esme.js: an ESME built on the npm package `smpp` (smpp.connect)
// that drives smscsim, for integration/smscsim_interop_test.go.
//
//   node smscsim-esme.js --port P --system-id ID --password PW [--host 127.0.0.1]
//                        [--to 4915112345678] [--mo 1] [--timeout 30000]
//
// It binds as a transceiver; submits with registered_delivery 1 one GSM
// 03.38 text (data_coding 0), one UCS-2 text (data_coding 8) and one long
// GSM text in segments with a concatenation UDH (IE 0x00, esm_class 0x40);
// waits for every submit_sm_resp and for one delivery receipt per message
// id (by receipted_message_id); with --mo 1 also waits for one
// mobile-originated deliver_sm; then unbinds and exits 0. Any failure exits
// 1.
//
// stdout: one JSON object per line:
//   {"event":"bound","system_id":"smscsim"}
//   {"event":"submit_resp","kind":"gsm","part":1,"status":0,"message_id":"..."}
//   {"event":"receipt","id":"...","state":2,"text":"id:... stat:DELIVRD ..."}
//   {"event":"mo","from":"...","to":"...","text":"..."}
//   {"event":"done","submits":N,"receipts":N} or {"event":"fail","reason":"..."}
'use strict';

const smpp = require('smpp');

function parseArgs(argv) {
	const o = {};
	for (let i = 0; i < argv.length; i += 2) {
		if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error('bad arguments near ' + argv[i]);
		o[argv[i].slice(2)] = argv[i + 1];
	}
	return o;
}

function log(o) {
	process.stdout.write(JSON.stringify(o) + '\n');
}

let args;
try {
	args = parseArgs(process.argv.slice(2));
} catch (e) {
	process.stderr.write('smscsim-esme.js: ' + e.message + '\n');
	process.exit(2);
}

const GSM = 'Your code is 123456 @ {ok}';
const UCS2 = 'Ваш код 123456 ✓';
const LONG = 'Long text: ' + 'the quick brown fox jumps over the lazy dog 0123456789. '.repeat(6);

let finished = false;
let session;
function finish(code, ev) {
	if (finished) return;
	finished = true;
	log(ev);
	process.stdout.write('', () => process.exit(code));
	setTimeout(() => process.exit(code), 200).unref();
}
function fail(reason) {
	if (session) {
		try { session.destroy(); } catch (e) { /* leaving */ }
	}
	finish(1, { event: 'fail', reason: reason });
}
setTimeout(() => fail('timeout'), parseInt(args.timeout || '30000', 10)).unref();

const submits = [];
const receipts = new Map();
let moSeen = false;
const wantMO = args.mo === '1';

function check() {
	if (finished || submits.length === 0 || !submits.every((s) => s.status !== undefined)) return;
	for (const s of submits) {
		if (s.status !== 0) return fail(s.kind + ' part ' + s.part + ' answered with status ' + s.status);
	}
	for (const s of submits) if (!receipts.has(s.id)) return;
	if (wantMO && !moSeen) return;
	session.unbind({}, () => {
		session.close();
		finish(0, { event: 'done', submits: submits.length, receipts: receipts.size });
	});
}

session = smpp.connect({ host: args.host || '127.0.0.1', port: parseInt(args.port, 10) });
session.on('error', (e) => fail('socket error: ' + (e && e.message || e)));
session.on('close', () => { if (!finished) fail('connection closed'); });
session.on('enquire_link', (pdu) => session.send(pdu.response()));
session.on('deliver_sm', (pdu) => {
	session.send(pdu.response());
	const sm = pdu.short_message;
	const text = sm && typeof sm === 'object' && !Buffer.isBuffer(sm) ? String(sm.message) : String(sm);
	if ((pdu.esm_class & 0x3C) !== smpp.ESM_CLASS.MC_DELIVERY_RECEIPT) {
		moSeen = true;
		log({ event: 'mo', from: pdu.source_addr, to: pdu.destination_addr, text: text, data_coding: pdu.data_coding });
		return check();
	}
	const id = pdu.receipted_message_id;
	log({ event: 'receipt', id: id, state: pdu.message_state, text: text });
	if (!id) return fail('receipt without receipted_message_id');
	if (receipts.has(id)) return fail('second receipt for ' + id);
	if (!submits.some((s) => s.id === id)) return fail('receipt for unknown id ' + id);
	receipts.set(id, text);
	check();
});
session.on('connect', () => {
	session.bind_transceiver({ system_id: args['system-id'] || '', password: args.password || '' }, (resp) => {
		if (resp.command_status !== 0) return fail('bind refused with status ' + resp.command_status);
		log({ event: 'bound', system_id: resp.system_id });
		const base = { source_addr_ton: 5, source_addr_npi: 0, source_addr: 'OTPD', dest_addr_ton: 1, dest_addr_npi: 1,
			destination_addr: args.to || '4915112345678', registered_delivery: 1 };
		const send = (kind, part, pdu) => {
			const s = { kind: kind, part: part };
			submits.push(s);
			session.submit_sm(Object.assign({}, base, pdu), (r) => {
				s.status = r.command_status;
				s.id = r.message_id;
				log({ event: 'submit_resp', kind: kind, part: part, status: r.command_status, message_id: r.message_id });
				check();
			});
		};
		send('gsm', 1, { data_coding: 0, short_message: GSM });
		send('ucs2', 1, { data_coding: 8, short_message: UCS2 });
		const parts = [];
		for (let i = 0; i < LONG.length; i += 153) parts.push(LONG.slice(i, i + 153));
		parts.forEach((p, i) => {
			const udh = Buffer.from([0x05, 0x00, 0x03, 0x2A, parts.length, i + 1]);
			send('long', i + 1, { data_coding: 0, esm_class: 0x40, short_message: { udh: udh, message: p } });
		});
	});
});
