#!/usr/bin/env node
// smsc.js: a small SMSC built on the npm package `smpp` (smpp.createServer),
// for the session interop tests in integration/session_interop_test.go.
//
//   node smsc.js --system-id ID --password PW [--port 0] [--host 127.0.0.1]
//                [--smsc-id NPMSMSC] [--throttle-every N] [--first-id 1]
//
// It accepts bind_transmitter, bind_receiver and bind_transceiver with the
// given credentials (ESME_RINVSYSID for another system_id, ESME_RINVPASWD for
// another password); answers submit_sm with increasing decimal message ids,
// or ESME_RTHROTTLED for every Nth submit_sm when --throttle-every N is given;
// sends a delivery receipt (deliver_sm, esm_class 4, Appendix B text,
// receipted_message_id and message_state TLVs) to a receiver or transceiver
// bind of the same system_id when registered_delivery asks for one; answers
// enquire_link and unbind.
//
// stdout: first "LISTENING <port>", then one JSON object per line per event:
//   {"event":"bind","conn":1,"command":"bind_transceiver","system_id":"otpd","status":0}
//   {"event":"submit","conn":1,"seq":2,"id":"1","from":"OTPD","to":"4915...",
//    "data_coding":0,"esm_class":0,"registered_delivery":1,"text":"...","udh":"050003...","sm":"hex"}
//   {"event":"throttled","conn":1,"seq":4,"n":3}
//   {"event":"receipt_sent","conn":2,"id":"1","to":"OTPD"} then {"event":"receipt_resp","conn":2,"id":"1","status":0}
//   {"event":"no_receiver","id":"1"}
//   {"event":"enquire_link","conn":1}, {"event":"unbind","conn":1,"system_id":"otpd"},
//   {"event":"close","conn":1}, {"event":"error","conn":1,"message":"..."}
// Message texts are test data here (never real codes), so they are logged.
//
// Lines on stdin are commands to every bound session: "enquire_link" sends
// enquire_link, "unbind" sends unbind (the SMSC ending the binds). It exits on
// SIGTERM, SIGINT or when stdin closes.
'use strict';

const smpp = require('smpp');

function parseArgs(argv) {
	const o = {};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (!a.startsWith('--')) throw new Error('unexpected argument ' + a);
		const k = a.slice(2);
		if (i + 1 >= argv.length) throw new Error('missing value for ' + a);
		o[k] = argv[++i];
	}
	return o;
}

let args;
try {
	args = parseArgs(process.argv.slice(2));
} catch (e) {
	process.stderr.write('smsc.js: ' + e.message + '\n');
	process.exit(2);
}
const host = args.host || '127.0.0.1';
const port = parseInt(args.port || '0', 10);
const systemID = args['system-id'] || 'otpd';
const password = args.password || 'secret';
const smscID = args['smsc-id'] || 'NPMSMSC';
const throttleEvery = parseInt(args['throttle-every'] || '0', 10);
let nextID = parseInt(args['first-id'] || '1', 10);

function log(o) {
	process.stdout.write(JSON.stringify(o) + '\n');
}

// SMPP absolute time for the receipt text: YYMMDDhhmm (Appendix B).
function receiptDate(d) {
	const p = (n) => ('0' + n).slice(-2);
	return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

let connSeq = 0;
let submits = 0;
const bound = new Set(); // sessions bound: {session, conn, systemID, command}
let rr = 0;

function receiverFor(sysID) {
	const list = [...bound].filter((b) => b.systemID === sysID && b.command !== 'bind_transmitter');
	if (list.length === 0) return null;
	return list[rr++ % list.length];
}

function textOf(sm) {
	// The package decodes short_message into {message, udh?} per data_coding.
	if (sm && typeof sm === 'object' && !Buffer.isBuffer(sm)) {
		return {
			text: typeof sm.message === 'string' ? sm.message : Buffer.from(sm.message || []).toString('hex'),
			udh: sm.udh ? Buffer.concat(sm.udh).toString('hex') : undefined,
		};
	}
	if (Buffer.isBuffer(sm)) return { text: sm.toString('latin1') };
	return { text: String(sm) };
}

const server = smpp.createServer(function (session) {
	const conn = ++connSeq;
	let me = null; // the bind record once bound
	log({ event: 'connect', conn: conn, peer: session.socket.remoteAddress + ':' + session.socket.remotePort });

	function onBind(pdu) {
		let status = smpp.ESME_ROK;
		if (me) status = smpp.ESME_RALYBND;
		else if (pdu.system_id !== systemID) status = smpp.ESME_RINVSYSID;
		else if (pdu.password !== password) status = smpp.ESME_RINVPASWD;
		log({ event: 'bind', conn: conn, command: pdu.command, system_id: pdu.system_id, interface_version: pdu.interface_version, status: status });
		if (status !== smpp.ESME_ROK) {
			session.send(pdu.response({ command_status: status }));
			return;
		}
		me = { session: session, conn: conn, systemID: pdu.system_id, command: pdu.command };
		bound.add(me);
		session.send(pdu.response({ system_id: smscID }));
	}
	session.on('bind_transceiver', onBind);
	session.on('bind_transmitter', onBind);
	session.on('bind_receiver', onBind);

	session.on('submit_sm', function (pdu) {
		if (!me || me.command === 'bind_receiver') {
			log({ event: 'submit_refused', conn: conn, seq: pdu.sequence_number, reason: me ? 'receiver' : 'not bound' });
			session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
			return;
		}
		const n = ++submits;
		if (throttleEvery > 0 && n % throttleEvery === 0) {
			log({ event: 'throttled', conn: conn, seq: pdu.sequence_number, n: n });
			session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
			return;
		}
		const id = String(nextID++);
		const t = textOf(pdu.short_message);
		const ev = {
			event: 'submit', conn: conn, seq: pdu.sequence_number, n: n, id: id,
			from: pdu.source_addr, source_addr_ton: pdu.source_addr_ton, source_addr_npi: pdu.source_addr_npi,
			to: pdu.destination_addr, dest_addr_ton: pdu.dest_addr_ton, dest_addr_npi: pdu.dest_addr_npi,
			data_coding: pdu.data_coding, esm_class: pdu.esm_class, registered_delivery: pdu.registered_delivery,
			text: t.text,
		};
		if (t.udh !== undefined) ev.udh = t.udh;
		log(ev);
		const submitted = new Date();
		session.send(pdu.response({ message_id: id }), function () {
			// The receipt goes out once the submit_sm_resp is written.
			if ((pdu.registered_delivery & 0x03) === 0) return;
			const rx = receiverFor(me.systemID);
			if (!rx) {
				log({ event: 'no_receiver', id: id });
				return;
			}
			// Characters the same in ASCII and GSM 03.38 only, so that the text
			// reads the same whichever the receiver decodes it as.
			const snippet = (t.text || '').replace(/[^A-Za-z0-9 .,:#]/g, '.').slice(0, 20);
			const text = 'id:' + id + ' sub:001 dlvrd:001 submit date:' + receiptDate(submitted) +
				' done date:' + receiptDate(new Date()) + ' stat:DELIVRD err:000 text:' + snippet;
			const ok = rx.session.deliver_sm({
				source_addr_ton: pdu.dest_addr_ton,
				source_addr_npi: pdu.dest_addr_npi,
				source_addr: pdu.destination_addr,
				dest_addr_ton: pdu.source_addr_ton,
				dest_addr_npi: pdu.source_addr_npi,
				destination_addr: pdu.source_addr,
				esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
				data_coding: 0,
				short_message: Buffer.from(text, 'ascii'),
				receipted_message_id: id,
				message_state: smpp.MESSAGE_STATE.DELIVERED,
			}, function (resp) {
				log({ event: 'receipt_resp', conn: rx.conn, id: id, status: resp.command_status });
			});
			log({ event: ok ? 'receipt_sent' : 'receipt_unsent', conn: rx.conn, id: id, to: pdu.source_addr });
		});
	});

	session.on('deliver_sm_resp', function () {}); // matched by the callback above

	session.on('enquire_link', function (pdu) {
		log({ event: 'enquire_link', conn: conn, seq: pdu.sequence_number });
		session.send(pdu.response());
	});

	session.on('unbind', function (pdu) {
		log({ event: 'unbind', conn: conn, seq: pdu.sequence_number, system_id: me ? me.systemID : null, command: me ? me.command : null });
		if (me) bound.delete(me);
		me = null;
		session.send(pdu.response(), function () {
			session.close();
		});
	});

	session.on('unknown', function (pdu) {
		log({ event: 'unknown', conn: conn, command_id: pdu.command_id });
		session.send(pdu.response());
	});

	session.on('generic_nack', function (pdu) {
		log({ event: 'generic_nack', conn: conn, seq: pdu.sequence_number, status: pdu.command_status });
	});

	session.on('error', function (e) {
		log({ event: 'error', conn: conn, message: String(e && e.message || e) });
	});

	session.on('close', function () {
		if (me) bound.delete(me);
		me = null;
		log({ event: 'close', conn: conn });
	});
});

server.on('error', function (e) {
	process.stderr.write('smsc.js: server error: ' + e.message + '\n');
	process.exit(1);
});

server.listen(port, host, function () {
	process.stdout.write('LISTENING ' + server.address().port + '\n');
});

let stopping = false;
function stop(why) {
	if (stopping) return;
	stopping = true;
	log({ event: 'exit', why: why });
	for (const s of server.sessions.slice()) {
		try {
			s.destroy();
		} catch (e) { /* closing anyway */ }
	}
	server.close();
	// Let stdout drain, then leave even if a socket lingers.
	setTimeout(() => process.exit(0), 50).unref();
	process.stdout.write('', () => process.exit(0));
}

// Commands on stdin, one a line, to every bound session:
//   enquire_link  sends enquire_link; logs {"event":"enquire_link_resp","conn":N,"status":S}
//   unbind        sends unbind; logs {"event":"unbind_resp","conn":N,"status":S}, then closes
function command(line) {
	const cmd = line.trim();
	if (!cmd) return;
	const targets = [...bound];
	log({ event: 'command', command: cmd, sessions: targets.length });
	for (const b of targets) {
		if (cmd === 'enquire_link') {
			b.session.enquire_link({}, (resp) => log({ event: 'enquire_link_resp', conn: b.conn, status: resp.command_status }));
		} else if (cmd === 'unbind') {
			bound.delete(b);
			b.session.unbind({}, (resp) => {
				log({ event: 'unbind_resp', conn: b.conn, status: resp.command_status });
				b.session.close();
			});
		} else {
			log({ event: 'bad_command', command: cmd });
			return;
		}
	}
}

let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
	pending += chunk;
	let i;
	while ((i = pending.indexOf('\n')) >= 0) {
		command(pending.slice(0, i));
		pending = pending.slice(i + 1);
	}
});

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.stdin.on('end', () => stop('stdin closed'));
process.stdin.on('error', () => stop('stdin error'));
process.stdin.resume();
