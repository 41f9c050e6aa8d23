#!/usr/bin/env node
// gen-fixtures.js prints golden PDUs encoded by the npm package `smpp`
// (an SMPP implementation independent of otpd) in the fixture format of
// fixtures/*.hex:
//
//   # <what this PDU is>
//   # source: npm smpp <version>
//   # deviation: <only when the npm encoder departs from SMPP 3.4>
//   <hex of the whole PDU>
//   spec: <only with a deviation whose bytes differ: the PDU as SMPP 3.4 has it>
//
// Every PDU is built with the package's own encoder, new smpp.PDU(...).
// toBuffer(), without a network connection. Output is deterministic: fixed
// sequence numbers, fixed dates, no clock.
//
// Usage: node gen-fixtures.js > ../../fixtures/interop/npm-smpp.hex
// (the Go test in integration/ does this with OTPD_UPDATE_FIXTURES=1).
'use strict';

const smpp = require('smpp');
const version = require('smpp/package.json').version;

const records = [];

// add encodes one PDU. opts.deviation explains a departure from SMPP 3.4;
// opts.spec(buf) returns the bytes SMPP 3.4 asks for when they differ.
function add(desc, command, params, opts) {
	opts = opts || {};
	const pdu = new smpp.PDU(command, params);
	const buf = pdu.toBuffer();
	records.push({
		desc: Array.isArray(desc) ? desc : [desc],
		deviation: opts.deviation,
		hex: buf.toString('hex'),
		spec: opts.spec ? opts.spec(Buffer.from(buf)).toString('hex') : undefined,
	});
}

// withBody appends body octets to a header-only PDU and fixes command_length.
function withBody(body) {
	return function (buf) {
		const out = Buffer.concat([buf, Buffer.from(body)]);
		out.writeUInt32BE(out.length, 0);
		return out;
	};
}

const ucs2 = (s) => {
	const le = Buffer.from(s, 'utf16le');
	const be = Buffer.alloc(le.length);
	for (let i = 0; i < le.length; i += 2) {
		be[i] = le[i + 1];
		be[i + 1] = le[i];
	}
	return be;
};
const ascii = (s) => Buffer.from(s, 'latin1');

const ESME_RINVCMDID = 0x03;
const ESME_RBINDFAIL = 0x0d;
const ESME_RINVMSGID = 0x0c;
const ESME_RTHROTTLED = 0x58;
const ESME_RX_P_APPN = 0x65;
const ESME_RINVDSTADR = 0x0b;
const ESME_RDELIVERYFAILURE = 0xfe;
const ESME_RCANCELFAIL = 0x11;
const ESME_RREPLACEFAIL = 0x13;
const ESME_RQUERYFAIL = 0x67;
const ESME_RINVSYSID = 0x0f;

// --- session management (SMPP 3.4 section 4.1, 4.2, 4.3, 4.11) ---

add('bind_transmitter, interface_version 0x34, international ISDN address range empty', 'bind_transmitter', {
	sequence_number: 1, system_id: 'otpd', password: 'secret', system_type: 'OTP',
	interface_version: 0x34, addr_ton: 1, addr_npi: 1, address_range: '',
});
add('bind_receiver with an address_range regular expression', 'bind_receiver', {
	sequence_number: 2, system_id: 'otpd-rx', password: 'pw', system_type: '',
	interface_version: 0x34, addr_ton: 1, addr_npi: 1, address_range: '^49151',
});
add('bind_transceiver with every optional field empty', 'bind_transceiver', {
	sequence_number: 3, system_id: 'otpd', password: 'secret', system_type: '',
	interface_version: 0x34,
});
add([
	'bind_transmitter without interface_version: npm writes its default 0x50 (SMPP 5.0);',
	'an SMPP 3.4 ESME sends 0x34 (section 5.2.4), so otpd\'s peers must not be given npm defaults',
], 'bind_transmitter', { sequence_number: 5, system_id: 'npm', password: 'pw' });
add('bind_transmitter_resp with sc_interface_version 0x34 TLV', 'bind_transmitter_resp', {
	sequence_number: 1, system_id: 'SMSC', sc_interface_version: 0x34,
});
add('bind_receiver_resp with error ESME_RBINDFAIL: header only', 'bind_receiver_resp', {
	sequence_number: 2, command_status: ESME_RBINDFAIL, system_id: 'SMSC',
});
add('bind_transceiver_resp without TLVs', 'bind_transceiver_resp', {
	sequence_number: 3, system_id: 'smscsim',
});
add('bind_transceiver_resp with error ESME_RINVSYSID: header only', 'bind_transceiver_resp', {
	sequence_number: 4, command_status: ESME_RINVSYSID,
});
add('outbind', 'outbind', { sequence_number: 9, system_id: 'SMSC', password: 'otp' });
add('unbind', 'unbind', { sequence_number: 100 });
add('unbind_resp', 'unbind_resp', { sequence_number: 100 });
add('generic_nack with ESME_RINVCMDID', 'generic_nack', { sequence_number: 7, command_status: ESME_RINVCMDID });
add('enquire_link', 'enquire_link', { sequence_number: 0x7fffffff });
add('enquire_link_resp', 'enquire_link_resp', { sequence_number: 0x7fffffff });

// --- submit_sm (section 4.4) ---

add('submit_sm: OTP text as octets, alphanumeric sender, registered_delivery 1', 'submit_sm', {
	sequence_number: 10, source_addr_ton: 5, source_addr_npi: 0, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	registered_delivery: 1, data_coding: 0, short_message: ascii('Your code is 123456'),
});
add([
	'submit_sm: short_message given as a JS string with data_coding 0 (SMSC default):',
	'npm encodes it to unpacked GSM 03.38 itself ("@" becomes 0x00, "_" 0x11)',
], 'submit_sm', {
	sequence_number: 11, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	data_coding: 0, short_message: 'Code_1 @ otpd',
});
add([
	'submit_sm: short_message given as a JS string without data_coding: npm detects the alphabet,',
	'encodes unpacked GSM 03.38 and sets data_coding 0x01',
], 'submit_sm', {
	sequence_number: 12, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	short_message: 'Code_1 @ otpd',
}, {
	deviation: 'data_coding 0x01 is IA5/ASCII (SMPP 3.4 section 5.2.19) but the octets are GSM 03.38 ("@" 0x00, "_" 0x11), not IA5',
});
add('submit_sm: UCS-2 (data_coding 8) octets of "Код 123456"', 'submit_sm', {
	sequence_number: 13, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '79161234567',
	registered_delivery: 1, data_coding: 8, short_message: ucs2('Код 123456'),
});
add('submit_sm: JS string with data_coding 8: npm encodes UTF-16BE itself (same octets as above)', 'submit_sm', {
	sequence_number: 14, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '79161234567',
	registered_delivery: 1, data_coding: 8, short_message: 'Код 123456',
});
add([
	'submit_sm: segment 1 of 2 with a concatenation UDH (IEI 0x00, ref 0xa7) in short_message, esm_class 0x40;',
	'given as {udh, message}: npm sets the UDHI bit of esm_class itself',
], 'submit_sm', {
	sequence_number: 15, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	esm_class: 0, registered_delivery: 1, data_coding: 0,
	short_message: { udh: Buffer.from('050003a70201', 'hex'), message: ascii('Your one-time code for otpd is 123456. It expires in ten minutes. ') },
});
add('submit_sm: segment 2 of 2, UDH in short_message, esm_class 0x40 set explicitly', 'submit_sm', {
	sequence_number: 16, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	esm_class: 0x40, registered_delivery: 1, data_coding: 0,
	short_message: Buffer.concat([Buffer.from('050003a70202', 'hex'), ascii('Do not share it.')]),
});
add('submit_sm: empty short_message, text in message_payload TLV', 'submit_sm', {
	sequence_number: 17, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	registered_delivery: 1, data_coding: 0, short_message: Buffer.alloc(0),
	message_payload: ascii('Your otpd code is 123456. It is valid for 10 minutes; never share it with anyone, not even with our support staff.'),
});
add('submit_sm: segment 1 of 3 by sar_msg_ref_num/sar_total_segments/sar_segment_seqnum TLVs, with user_message_reference', 'submit_sm', {
	sequence_number: 18, source_addr_ton: 1, source_addr_npi: 1, source_addr: '4930123456',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	data_coding: 0, short_message: ascii('part one'),
	sar_msg_ref_num: 0x1234, sar_total_segments: 3, sar_segment_seqnum: 1, user_message_reference: 0xbeef,
});
add('submit_sm: WAP-style ports: source_port and destination_port TLVs (npm calls it dest_port), binary data_coding 4', 'submit_sm', {
	sequence_number: 19, source_addr_ton: 1, source_addr_npi: 1, source_addr: '4930123456',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	data_coding: 4, short_message: Buffer.from('0102030405', 'hex'),
	source_port: 9200, dest_port: 2948,
});
add([
	'submit_sm: schedule_delivery_time from a JS Date (absolute, UTC "00+"), validity_period',
	'from a 12-character string (npm pads it to relative "000R"), priority 1, protocol_id 0, replace_if_present 1',
], 'submit_sm', {
	sequence_number: 20, service_type: 'OTP', source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	priority_flag: 1, schedule_delivery_time: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 600)),
	validity_period: '000000001000', registered_delivery: 0x11, replace_if_present_flag: 1,
	data_coding: 0, short_message: ascii('later'),
});
add('submit_sm with alert_on_message_delivery TLV', 'submit_sm', {
	sequence_number: 21, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	data_coding: 0, short_message: ascii('hi'), alert_on_message_delivery: 0,
}, {
	deviation: 'alert_on_message_delivery has no value (length 0, SMPP 3.4 section 5.3.2.41); npm types it int8 and always writes length 1 with a value octet, so it cannot send the parameter as specified',
});
add('submit_sm_resp with a message_id', 'submit_sm_resp', { sequence_number: 10, message_id: '5f3c1a2b' });
add('submit_sm_resp with error ESME_RTHROTTLED: header only', 'submit_sm_resp', {
	sequence_number: 11, command_status: ESME_RTHROTTLED, message_id: 'ignored',
});

// --- submit_multi (section 4.5) ---

add('submit_multi: two SME addresses and a distribution list', 'submit_multi', {
	sequence_number: 30, source_addr_ton: 5, source_addr: 'OTPD',
	dest_address: [
		{ dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678' },
		{ dl_name: 'oncall' },
		{ dest_addr_ton: 2, dest_addr_npi: 8, destination_addr: '015112345679' },
	],
	registered_delivery: 1, data_coding: 0, short_message: ascii('Alert: login from new device'),
});
add('submit_multi_resp with two unsuccess_sme entries', 'submit_multi_resp', {
	sequence_number: 30, message_id: 'm-77',
	unsuccess_sme: [
		{ dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678', error_status_code: ESME_RINVDSTADR },
		{ dest_addr_ton: 2, dest_addr_npi: 8, destination_addr: '015112345679', error_status_code: ESME_RX_P_APPN },
	],
});
add('submit_multi_resp with no_unsuccess 0', 'submit_multi_resp', { sequence_number: 31, message_id: 'm-78', unsuccess_sme: [] });

// --- deliver_sm (section 4.6) ---

add([
	'deliver_sm: delivery receipt (esm_class 0x04) with the SMPP 3.4 Appendix B text and the',
	'receipted_message_id, message_state (DELIVERED) and network_error_code (GSM, 0) TLVs',
], 'deliver_sm', {
	sequence_number: 40, source_addr_ton: 1, source_addr_npi: 1, source_addr: '4915112345678',
	dest_addr_ton: 5, dest_addr_npi: 0, destination_addr: 'OTPD', esm_class: 0x04, data_coding: 0,
	short_message: ascii('id:5f3c1a2b sub:001 dlvrd:001 submit date:2501021200 done date:2501021201 stat:DELIVRD err:000 text:Your code is 12345'),
	receipted_message_id: '5f3c1a2b', message_state: 2, network_error_code: Buffer.from('030000', 'hex'),
});
add('deliver_sm: failed receipt (UNDELIV, GSM error 0x0022), Appendix B text with a decimal id, TLVs in another order', 'deliver_sm', {
	sequence_number: 41, source_addr_ton: 1, source_addr_npi: 1, source_addr: '4915112345678',
	destination_addr: 'OTPD', dest_addr_ton: 5, esm_class: 0x04,
	short_message: ascii('id:1601023488 sub:001 dlvrd:000 submit date:2501021200 done date:2501021300 stat:UNDELIV err:034 text:'),
	data_coding: 0, message_state: 5, network_error_code: Buffer.from('030022', 'hex'), receipted_message_id: '5F6CB100',
});
add('deliver_sm: mobile-originated UCS-2 text', 'deliver_sm', {
	sequence_number: 42, source_addr_ton: 1, source_addr_npi: 1, source_addr: '4915112345678',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4930123456', data_coding: 8, short_message: ucs2('Привет 😀'),
});
add('deliver_sm_resp (message_id unused, empty)', 'deliver_sm_resp', { sequence_number: 40 });
add('deliver_sm_resp with error ESME_RX_P_APPN: header only', 'deliver_sm_resp', { sequence_number: 41, command_status: ESME_RX_P_APPN });

// --- data_sm (section 4.7) ---

add('data_sm: message_payload, source_port/destination_port, registered_delivery 1', 'data_sm', {
	sequence_number: 50, source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
	registered_delivery: 1, data_coding: 0,
	source_port: 1000, dest_port: 2000, message_payload: ascii('Code 123456'),
});
add('data_sm_resp with a message_id', 'data_sm_resp', { sequence_number: 50, message_id: 'd-1' });
add('data_sm_resp with error ESME_RDELIVERYFAILURE and delivery_failure_reason', 'data_sm_resp', {
	sequence_number: 51, command_status: ESME_RDELIVERYFAILURE, message_id: '', delivery_failure_reason: 1,
}, {
	deviation: 'npm writes no body when command_status is non-zero, for data_sm_resp too; SMPP 3.4 section 4.7.2 keeps message_id and the delivery_failure_reason/network_error_code/additional_status_info_text/dpf_result TLVs for that case, so npm drops the TLV and the mandatory message_id',
	spec: withBody([0x00]),
});

// --- query_sm, cancel_sm, replace_sm (sections 4.8, 4.9, 4.10) ---

add('query_sm', 'query_sm', { sequence_number: 60, message_id: '5f3c1a2b', source_addr_ton: 5, source_addr: 'OTPD' });
add('query_sm_resp: DELIVERED with final_date', 'query_sm_resp', {
	sequence_number: 60, message_id: '5f3c1a2b', final_date: '250102120100000+', message_state: 2, error_code: 0,
});
add('query_sm_resp: ENROUTE, final_date empty', 'query_sm_resp', {
	sequence_number: 61, message_id: '5f3c1a2c', final_date: '', message_state: 1, error_code: 0,
});
add('query_sm_resp with error ESME_RQUERYFAIL: header only', 'query_sm_resp', { sequence_number: 62, command_status: ESME_RQUERYFAIL });
add('cancel_sm', 'cancel_sm', {
	sequence_number: 70, service_type: '', message_id: '5f3c1a2b', source_addr_ton: 5, source_addr: 'OTPD',
	dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '4915112345678',
});
add('cancel_sm_resp', 'cancel_sm_resp', { sequence_number: 70 });
add('cancel_sm_resp with error ESME_RCANCELFAIL', 'cancel_sm_resp', { sequence_number: 71, command_status: ESME_RCANCELFAIL });
add('replace_sm: new text and absolute validity_period', 'replace_sm', {
	sequence_number: 80, message_id: '5f3c1a2b', source_addr_ton: 5, source_addr: 'OTPD',
	validity_period: '250102130000000+', registered_delivery: 1, short_message: ascii('Your code is 654321'),
});
add('replace_sm_resp', 'replace_sm_resp', { sequence_number: 80 });
add('replace_sm_resp with error ESME_RREPLACEFAIL', 'replace_sm_resp', { sequence_number: 81, command_status: ESME_RREPLACEFAIL });

// --- alert_notification (section 4.12) ---

add('alert_notification with ms_availability_status 0 (available)', 'alert_notification', {
	sequence_number: 90, source_addr_ton: 1, source_addr_npi: 1, source_addr: '4915112345678',
	esme_addr_ton: 5, esme_addr_npi: 0, esme_addr: 'OTPD', ms_availability_status: 0,
});

let out = '';
for (const r of records) {
	for (const d of r.desc) out += '# ' + d + '\n';
	out += '# source: npm smpp ' + version + '\n';
	if (r.deviation) out += '# deviation: ' + r.deviation + '\n';
	out += r.hex + '\n';
	if (r.spec !== undefined && r.spec !== r.hex) out += 'spec: ' + r.spec + '\n';
	out += '\n';
}
process.stdout.write(out);
