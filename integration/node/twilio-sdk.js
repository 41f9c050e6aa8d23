#!/usr/bin/env node
// twilio-sdk.js: the npm package `twilio` (Twilio's own Node SDK) pointed at
// otpd, for integration/twilio_sdk_test.go. Its Messages and Verify clients
// talk to otpd's Twilio doors; an HTTP server receives the StatusCallback
// and checks it with the SDK's twilio.validateRequest.
//
//   node twilio-sdk.js --url http://127.0.0.1:PORT --account AC... --token KEY
//                      --to +4915112345678 --verify-to +4915112345679 --service VA...
//
// stdout: one JSON object a line:
//   {"event":"created", ...the Message resource the SDK read...}
//   {"event":"callback","valid":true,"params":{...}}
//   {"event":"fetched","status":"delivered",...}, {"event":"listed","sids":[...]}
//   {"event":"error","case":"...","code":20003,"status":401}
//   {"event":"verification","sid":"VE...","status":"pending"}
//   (then it reads the code from stdin)
//   {"event":"check","status":"approved","valid":true}
//   {"event":"done"} or {"event":"fail","reason":"..."}
'use strict';

const http = require('http');
const readline = require('readline');
const twilio = require('twilio');

function parseArgs(argv) {
	const o = {};
	for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
	return o;
}

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function client(args, token) {
	const c = twilio(args.account, token);
	c.api.baseUrl = args.url;
	c.verify.baseUrl = args.url;
	return c;
}

async function expectError(name, fn) {
	try {
		await fn();
		throw new Error(name + ': no error');
	} catch (e) {
		if (e.status === undefined) throw e;
		out({ event: 'error', case: name, code: e.code, status: e.status, moreInfo: e.moreInfo });
	}
}

async function main() {
	const args = parseArgs(process.argv.slice(2));
	const c = client(args, args.token);
	let resolveCallback;
	const gotCallback = new Promise((r) => (resolveCallback = r));
	const srv = http.createServer((req, res) => {
		let body = '';
		req.on('data', (d) => (body += d));
		req.on('end', () => {
			const params = Object.fromEntries(new URLSearchParams(body));
			const url = 'http://' + req.headers.host + req.url;
			const valid = twilio.validateRequest(args.token, req.headers['x-twilio-signature'] || '', url, params);
			out({ event: 'callback', valid, params });
			res.writeHead(valid ? 204 : 403);
			res.end();
			if (params.MessageStatus === 'delivered') resolveCallback(params);
		});
	});
	await new Promise((r) => srv.listen(0, '127.0.0.1', r));
	const cb = `http://127.0.0.1:${srv.address().port}/twilio/status?site=1`;

	const m = await c.messages.create({ to: args.to, from: 'OTPD', body: 'SDK code 246810', statusCallback: cb });
	out({ event: 'created', sid: m.sid, status: m.status, to: m.to, from: m.from, body: m.body, numSegments: m.numSegments,
		direction: m.direction, accountSid: m.accountSid, apiVersion: m.apiVersion, dateCreated: m.dateCreated && m.dateCreated.toISOString(),
		errorCode: m.errorCode, uri: m.uri });
	await gotCallback;
	const f = await c.messages(m.sid).fetch();
	out({ event: 'fetched', sid: f.sid, status: f.status, dateSent: f.dateSent && f.dateSent.toISOString() });
	const list = await c.messages.list({ limit: 20 });
	out({ event: 'listed', sids: list.map((x) => x.sid) });

	await expectError('wrong token', () => client(args, 'otpd_wrong').messages.create({ to: args.to, from: 'OTPD', body: 'x' }));
	await expectError('invalid To', () => c.messages.create({ to: '+12', from: 'OTPD', body: 'x' }));
	await expectError('no Body', () => c.messages.create({ to: args.to, from: 'OTPD', body: '' }));

	const v = await c.verify.v2.services(args.service).verifications.create({ to: args['verify-to'], channel: 'sms' });
	out({ event: 'verification', sid: v.sid, status: v.status, to: v.to, channel: v.channel, valid: v.valid, serviceSid: v.serviceSid });
	const rl = readline.createInterface({ input: process.stdin });
	const code = await new Promise((r) => rl.once('line', r));
	const wrong = await c.verify.v2.services(args.service).verificationChecks.create({ to: args['verify-to'], code: code === '000000' ? '111111' : '000000' });
	out({ event: 'check', case: 'wrong', status: wrong.status, valid: wrong.valid });
	const ok = await c.verify.v2.services(args.service).verificationChecks.create({ to: args['verify-to'], code });
	out({ event: 'check', case: 'right', status: ok.status, valid: ok.valid, sid: ok.sid });
	await expectError('check again', () => c.verify.v2.services(args.service).verificationChecks.create({ to: args['verify-to'], code }));
	rl.close();
	srv.close();
	out({ event: 'done' });
}

main().catch((e) => {
	out({ event: 'fail', reason: String(e && e.stack || e) });
	process.exit(1);
});
