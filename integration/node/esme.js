#!/usr/bin/env node
// esme.js: an ESME built on the npm package `smpp` (smpp.connect), for the
// session interop tests in integration/session_interop_test.go.
//
//   node esme.js --port P --system-id ID --password PW [--host 127.0.0.1]
//                [--mode trx|txrx] [--from OTPD] [--to 4915112345678]
//                [--gsm TEXT --count N] [--ucs2 TEXT] [--long TEXT]
//                [--expect-enquire-link 1] [--wait-unbind 1] [--timeout 30000]
//
// It binds (one transceiver, or a receiver and a transmitter for txrx),
// submits with registered_delivery 1: N GSM 03.38 messages "TEXT #i"
// (data_coding 0), one UCS-2 message (data_coding 8) and one long GSM text
// split into segments with a concatenation UDH (IE 0x00, esm_class 0x40);
// waits for every submit_sm_resp and for a delivery receipt of each message
// id; with --expect-enquire-link waits for an enquire_link from the SMSC;
// sends enquire_link; then unbinds (or, with --wait-unbind, waits for the
// SMSC to unbind it) and exits 0. Any failure exits 1.
//
// stdout: one JSON object per line, e.g.
//   {"event":"bound","bind":"bind_transceiver","system_id":"otpd","sc_interface_version":52}
//   {"event":"bind_failed","bind":"bind_transceiver","status":14}
//   {"event":"submit","ref":3,"kind":"long","part":1,"parts":2,"text":"..."}
//   {"event":"submit_resp","ref":3,"status":0,"message_id":"3"}
//   {"event":"receipt","session":"rx","id":"3","state":2,"esm_class":4,"text":"id:3 sub:..."}
//   {"event":"enquire_link_in","session":"tx"}, {"event":"enquire_link_resp","session":"tx","status":0}
//   {"event":"unbound","session":"tx"}, {"event":"unbind_in","session":"rx"}
//   {"event":"done"} or {"event":"fail","reason":"..."}
'use strict';

const smpp = require('smpp');

function parseArgs(argv) {
	const o = {};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (!a.startsWith('--')) throw new Error('unexpected argument ' + a);
		if (i + 1 >= argv.length) throw new Error('missing value for ' + a);
		o[a.slice(2)] = argv[++i];
	}
	return o;
}

function log(o) {
	process.stdout.write(JSON.stringify(o) + '\n');
}

let finished = false;
function finish(code, ev) {
	if (finished) return;
	finished = true;
	log(ev);
	for (const s of sessions) {
		try {
			s.session.destroy();
		} catch (e) { /* leaving anyway */ }
	}
	process.stdout.write('', () => process.exit(code));
	setTimeout(() => process.exit(code), 100).unref();
}
function fail(reason) {
	finish(1, { event: 'fail', reason: reason });
}

let args;
try {
	args = parseArgs(process.argv.slice(2));
} catch (e) {
	process.stderr.write('esme.js: ' + e.message + '\n');
	process.exit(2);
}
const host = args.host || '127.0.0.1';
const port = parseInt(args.port || '2775', 10);
const mode = args.mode || 'trx';
const from = args.from || 'OTPD';
const to = args.to || '4915112345678';
const gsm = args.gsm === undefined ? 'Your code is 123456' : args.gsm;
const count = parseInt(args.count || '1', 10);
const ucs2 = args.ucs2;
const long = args.long;
const expectEnquireLink = args['expect-enquire-link'] === '1';
const waitUnbind = args['wait-unbind'] === '1';
const timeout = parseInt(args.timeout || '30000', 10);

if (mode !== 'trx' && mode !== 'txrx') {
	process.stderr.write('esme.js: --mode must be trx or txrx\n');
	process.exit(2);
}

setTimeout(() => fail('timeout after ' + timeout + 'ms; state: ' + JSON.stringify(state())), timeout).unref();

const sessions = []; // {name, session, bind, closed, unboundByPeer}
const submits = []; // {ref, kind, part, parts, text, resp, messageID}
const receipts = new Map(); // message id -> receipt
let enquireLinksIn = 0;

function state() {
	return {
		submits: submits.length,
		responses: submits.filter((s) => s.resp !== undefined).length,
		receipts: receipts.size,
		enquireLinksIn: enquireLinksIn,
	};
}

// GSM 03.38 septets of a character: 2 for the extension table.
const gsmExt = '\f^{}\\[~]|€';
function septets(ch) {
	return gsmExt.includes(ch) ? 2 : 1;
}

// splitGSM cuts text into segments of at most max septets, never inside an
// escape sequence.
function splitGSM(text, max) {
	const out = [];
	let cur = '';
	let n = 0;
	for (const ch of text) {
		const k = septets(ch);
		if (n + k > max) {
			out.push(cur);
			cur = '';
			n = 0;
		}
		cur += ch;
		n += k;
	}
	if (cur) out.push(cur);
	return out;
}

function open(name, bind) {
	return new Promise((resolve) => {
		const session = smpp.connect({ host: host, port: port });
		const rec = { name: name, session: session, bind: bind, closed: false, unboundByPeer: false, wantClose: false };
		sessions.push(rec);
		session.on('error', (e) => {
			if (!rec.wantClose) fail(name + ': socket error: ' + (e && e.message || e));
		});
		session.on('close', () => {
			rec.closed = true;
			log({ event: 'close', session: name });
			if (!rec.wantClose && !finished) fail(name + ': connection closed by the SMSC without unbind');
			checkDone();
		});
		session.on('deliver_sm', (pdu) => onDeliver(rec, pdu));
		session.on('enquire_link', (pdu) => {
			enquireLinksIn++;
			log({ event: 'enquire_link_in', session: name });
			session.send(pdu.response());
			progress();
		});
		session.on('unbind', (pdu) => {
			log({ event: 'unbind_in', session: name });
			rec.unboundByPeer = true;
			rec.wantClose = true;
			if (!waitUnbind) fail(name + ': unexpected unbind from the SMSC');
			session.send(pdu.response(), () => session.close());
		});
		session.on('generic_nack', (pdu) => {
			if (!session._callbacks[pdu.sequence_number]) {
				log({ event: 'generic_nack', session: name, status: pdu.command_status });
			}
		});
		session.on('connect', () => {
			session[bind]({
				system_id: args['system-id'] || '',
				password: args.password || '',
				system_type: 'interop',
			}, (resp) => {
				if (resp.command_status !== 0) {
					log({ event: 'bind_failed', session: name, bind: bind, status: resp.command_status });
					fail(name + ': ' + bind + ' refused with status ' + resp.command_status);
					return;
				}
				log({ event: 'bound', session: name, bind: bind, system_id: resp.system_id, sc_interface_version: resp.sc_interface_version });
				resolve(rec);
			});
		});
	});
}

function onDeliver(rec, pdu) {
	rec.session.send(pdu.response());
	const sm = pdu.short_message;
	const text = sm && typeof sm === 'object' && !Buffer.isBuffer(sm) ? String(sm.message) : String(sm);
	if ((pdu.esm_class & 0x3C) !== smpp.ESM_CLASS.MC_DELIVERY_RECEIPT) {
		log({ event: 'mo', session: rec.name, from: pdu.source_addr, to: pdu.destination_addr, text: text });
		return;
	}
	const r = {
		event: 'receipt', session: rec.name, id: pdu.receipted_message_id, state: pdu.message_state,
		esm_class: pdu.esm_class, from: pdu.source_addr, to: pdu.destination_addr, text: text,
	};
	log(r);
	if (rec.bind === 'bind_transmitter') {
		fail('receipt on a transmitter bind');
		return;
	}
	if (!r.id) {
		fail('receipt without receipted_message_id');
		return;
	}
	if (receipts.has(r.id)) {
		fail('second receipt for ' + r.id);
		return;
	}
	receipts.set(r.id, r);
	progress();
}

let phase = 'binding';

function allAnswered() {
	return submits.length > 0 && submits.every((s) => s.resp !== undefined);
}

function progress() {
	if (finished) return;
	if (phase === 'submitted') {
		if (!allAnswered()) return;
		for (const s of submits) {
			if (s.resp !== 0) {
				fail('submit ' + s.ref + ' answered with status ' + s.resp);
				return;
			}
		}
		const ids = new Set(submits.map((s) => s.messageID));
		if (ids.size !== submits.length) {
			fail('message ids not distinct: ' + JSON.stringify([...ids]));
			return;
		}
		for (const id of ids) if (!receipts.has(id)) return;
		for (const [id, r] of receipts) {
			if (!ids.has(id)) {
				fail('receipt for unknown message id ' + id);
				return;
			}
			if (r.state !== smpp.MESSAGE_STATE.DELIVERED) {
				fail('receipt for ' + id + ' with message_state ' + r.state);
				return;
			}
			if (!r.text.includes('id:') || !r.text.includes('stat:')) {
				fail('receipt for ' + id + ' without Appendix B text: ' + r.text);
				return;
			}
		}
		log({ event: 'receipts_complete', count: receipts.size });
		phase = 'enquire';
	}
	if (phase === 'enquire') {
		if (expectEnquireLink && enquireLinksIn === 0) return;
		phase = 'enquiring';
		let pending = sessions.length;
		for (const rec of sessions) {
			rec.session.enquire_link({}, (resp) => {
				log({ event: 'enquire_link_resp', session: rec.name, status: resp.command_status });
				if (resp.command_status !== 0) {
					fail('enquire_link answered with ' + resp.command_status);
					return;
				}
				if (--pending === 0) closeAll();
			});
		}
	}
}

function closeAll() {
	if (waitUnbind) {
		phase = 'waiting_unbind';
		log({ event: 'waiting_unbind' });
		return;
	}
	phase = 'unbinding';
	for (const rec of sessions) {
		rec.session.unbind({}, (resp) => {
			log({ event: 'unbound', session: rec.name, status: resp.command_status });
			rec.wantClose = true;
			rec.session.close();
		});
	}
}

function checkDone() {
	if (finished) return;
	if (phase !== 'unbinding' && phase !== 'waiting_unbind') return;
	if (!sessions.every((s) => s.closed)) return;
	if (waitUnbind && !sessions.every((s) => s.unboundByPeer)) {
		fail('closed without unbind from the SMSC');
		return;
	}
	finish(0, { event: 'done', submits: submits.length, receipts: receipts.size });
}

function submit(tx, s, pdu) {
	submits.push(s);
	log({ event: 'submit', ref: s.ref, kind: s.kind, part: s.part, parts: s.parts, text: s.text });
	const ok = tx.session.submit_sm(pdu, (resp) => {
		s.resp = resp.command_status;
		s.messageID = resp.message_id;
		log({ event: 'submit_resp', ref: s.ref, kind: s.kind, status: resp.command_status, message_id: resp.message_id });
		progress();
	});
	if (!ok) fail('submit_sm not sent: socket not writable');
}

async function main() {
	let tx;
	if (mode === 'txrx') {
		await open('rx', 'bind_receiver'); // first, so that receipts have a bind
		tx = await open('tx', 'bind_transmitter');
	} else {
		tx = await open('trx', 'bind_transceiver');
	}
	const base = { source_addr_ton: 5, source_addr_npi: 0, source_addr: from, dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: to, registered_delivery: 1 };
	let ref = 0;
	for (let i = 1; i <= count; i++) {
		const text = gsm + ' #' + i;
		submit(tx, { ref: ++ref, kind: 'gsm', part: 1, parts: 1, text: text }, Object.assign({}, base, { data_coding: 0, short_message: text }));
	}
	if (ucs2) {
		submit(tx, { ref: ++ref, kind: 'ucs2', part: 1, parts: 1, text: ucs2 }, Object.assign({}, base, { data_coding: 8, short_message: ucs2 }));
	}
	if (long) {
		const parts = splitGSM(long, 153);
		const cref = 1 + Math.floor(Math.random() * 255);
		parts.forEach((p, i) => {
			const udh = Buffer.from([0x05, 0x00, 0x03, cref, parts.length, i + 1]);
			submit(tx, { ref: ++ref, kind: 'long', part: i + 1, parts: parts.length, text: p },
				Object.assign({}, base, { data_coding: 0, short_message: { udh: udh, message: p } }));
		});
	}
	phase = 'submitted';
	progress();
}

main().catch((e) => fail('exception: ' + (e && e.stack || e)));
