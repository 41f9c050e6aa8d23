#!/usr/bin/env node
// decode.js reads whole SMPP PDUs as hex, one per line, on stdin, decodes each
// with the npm package `smpp` and prints one JSON object per line on stdout:
//
//   {"command": "submit_sm", "command_status": 0, "sequence_number": 10,
//    "fields": {"source_addr": "OTPD", ...}}
//
// Buffers are printed as {"hex": "..."}; Dates (npm turns time fields into
// Dates) as their ISO string; decoded text as the package gives it. A line
// that does not decode gives {"error": "..."}. Blank lines and lines starting
// with '#' are skipped.
'use strict';

const smpp = require('smpp');

function plain(v) {
	if (Buffer.isBuffer(v)) return { hex: v.toString('hex') };
	if (v instanceof Date) return isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
	if (Array.isArray(v)) return v.map(plain);
	if (v && typeof v === 'object') {
		const o = {};
		for (const k of Object.keys(v)) o[k] = plain(v[k]);
		return o;
	}
	return v;
}

const header = new Set(['command', 'command_length', 'command_id', 'command_status', 'sequence_number']);

function decode(line) {
	const buf = Buffer.from(line, 'hex');
	if (buf.length < 16) return { error: 'shorter than a PDU header' };
	const pdu = smpp.PDU.fromBuffer(buf);
	if (!pdu) return { error: 'smpp.PDU.fromBuffer refused it' };
	const fields = {};
	for (const k of Object.keys(pdu)) {
		if (!header.has(k)) fields[k] = plain(pdu[k]);
	}
	return {
		command: pdu.command,
		command_status: pdu.command_status,
		sequence_number: pdu.sequence_number,
		fields: fields,
	};
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
	let out = '';
	for (const raw of input.split('\n')) {
		const line = raw.trim();
		if (line === '' || line.startsWith('#')) continue;
		let r;
		try {
			r = decode(line);
		} catch (e) {
			r = { error: String(e && e.message || e) };
		}
		out += JSON.stringify(r) + '\n';
	}
	process.stdout.write(out);
});
