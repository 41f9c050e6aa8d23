package smpp

import "fmt"

// CommandStatus is the command_status field of an SMPP PDU (SMPP 3.4 section
// 5.1.3). A non-zero status is an error: CommandStatus implements error, so a
// response status travels as a typed error that can be tested with
// errors.Is(err, smpp.ESME_RTHROTTLED) or errors.As.
type CommandStatus uint32

// Command status values of SMPP 3.4 table 5-2.
const (
	ESME_ROK              CommandStatus = 0x00000000
	ESME_RINVMSGLEN       CommandStatus = 0x00000001
	ESME_RINVCMDLEN       CommandStatus = 0x00000002
	ESME_RINVCMDID        CommandStatus = 0x00000003
	ESME_RINVBNDSTS       CommandStatus = 0x00000004
	ESME_RALYBND          CommandStatus = 0x00000005
	ESME_RINVPRTFLG       CommandStatus = 0x00000006
	ESME_RINVREGDLVFLG    CommandStatus = 0x00000007
	ESME_RSYSERR          CommandStatus = 0x00000008
	ESME_RINVSRCADR       CommandStatus = 0x0000000A
	ESME_RINVDSTADR       CommandStatus = 0x0000000B
	ESME_RINVMSGID        CommandStatus = 0x0000000C
	ESME_RBINDFAIL        CommandStatus = 0x0000000D
	ESME_RINVPASWD        CommandStatus = 0x0000000E
	ESME_RINVSYSID        CommandStatus = 0x0000000F
	ESME_RCANCELFAIL      CommandStatus = 0x00000011
	ESME_RREPLACEFAIL     CommandStatus = 0x00000013
	ESME_RMSGQFUL         CommandStatus = 0x00000014
	ESME_RINVSERTYP       CommandStatus = 0x00000015
	ESME_RINVNUMDESTS     CommandStatus = 0x00000033
	ESME_RINVDLNAME       CommandStatus = 0x00000034
	ESME_RINVDESTFLAG     CommandStatus = 0x00000040
	ESME_RINVSUBREP       CommandStatus = 0x00000042
	ESME_RINVESMCLASS     CommandStatus = 0x00000043
	ESME_RCNTSUBDL        CommandStatus = 0x00000044
	ESME_RSUBMITFAIL      CommandStatus = 0x00000045
	ESME_RINVSRCTON       CommandStatus = 0x00000048
	ESME_RINVSRCNPI       CommandStatus = 0x00000049
	ESME_RINVDSTTON       CommandStatus = 0x00000050
	ESME_RINVDSTNPI       CommandStatus = 0x00000051
	ESME_RINVSYSTYP       CommandStatus = 0x00000053
	ESME_RINVREPFLAG      CommandStatus = 0x00000054
	ESME_RINVNUMMSGS      CommandStatus = 0x00000055
	ESME_RTHROTTLED       CommandStatus = 0x00000058
	ESME_RINVSCHED        CommandStatus = 0x00000061
	ESME_RINVEXPIRY       CommandStatus = 0x00000062
	ESME_RINVDFTMSGID     CommandStatus = 0x00000063
	ESME_RX_T_APPN        CommandStatus = 0x00000064
	ESME_RX_P_APPN        CommandStatus = 0x00000065
	ESME_RX_R_APPN        CommandStatus = 0x00000066
	ESME_RQUERYFAIL       CommandStatus = 0x00000067
	ESME_RINVOPTPARSTREAM CommandStatus = 0x000000C0
	ESME_ROPTPARNOTALLWD  CommandStatus = 0x000000C1
	ESME_RINVPARLEN       CommandStatus = 0x000000C2
	ESME_RMISSINGOPTPARAM CommandStatus = 0x000000C3
	ESME_RINVOPTPARAMVAL  CommandStatus = 0x000000C4
	ESME_RDELIVERYFAILURE CommandStatus = 0x000000FE
	ESME_RUNKNOWNERR      CommandStatus = 0x000000FF
)

type statusInfo struct {
	name    string
	meaning string
}

var statusTable = map[CommandStatus]statusInfo{
	ESME_ROK:              {"ESME_ROK", "no error"},
	ESME_RINVMSGLEN:       {"ESME_RINVMSGLEN", "message length is invalid"},
	ESME_RINVCMDLEN:       {"ESME_RINVCMDLEN", "command length is invalid"},
	ESME_RINVCMDID:        {"ESME_RINVCMDID", "invalid command ID"},
	ESME_RINVBNDSTS:       {"ESME_RINVBNDSTS", "incorrect bind status for given command"},
	ESME_RALYBND:          {"ESME_RALYBND", "ESME already in bound state"},
	ESME_RINVPRTFLG:       {"ESME_RINVPRTFLG", "invalid priority flag"},
	ESME_RINVREGDLVFLG:    {"ESME_RINVREGDLVFLG", "invalid registered delivery flag"},
	ESME_RSYSERR:          {"ESME_RSYSERR", "system error"},
	ESME_RINVSRCADR:       {"ESME_RINVSRCADR", "invalid source address"},
	ESME_RINVDSTADR:       {"ESME_RINVDSTADR", "invalid destination address"},
	ESME_RINVMSGID:        {"ESME_RINVMSGID", "message ID is invalid"},
	ESME_RBINDFAIL:        {"ESME_RBINDFAIL", "bind failed"},
	ESME_RINVPASWD:        {"ESME_RINVPASWD", "invalid password"},
	ESME_RINVSYSID:        {"ESME_RINVSYSID", "invalid system ID"},
	ESME_RCANCELFAIL:      {"ESME_RCANCELFAIL", "cancel_sm failed"},
	ESME_RREPLACEFAIL:     {"ESME_RREPLACEFAIL", "replace_sm failed"},
	ESME_RMSGQFUL:         {"ESME_RMSGQFUL", "message queue full"},
	ESME_RINVSERTYP:       {"ESME_RINVSERTYP", "invalid service type"},
	ESME_RINVNUMDESTS:     {"ESME_RINVNUMDESTS", "invalid number of destinations"},
	ESME_RINVDLNAME:       {"ESME_RINVDLNAME", "invalid distribution list name"},
	ESME_RINVDESTFLAG:     {"ESME_RINVDESTFLAG", "destination flag is invalid (submit_multi)"},
	ESME_RINVSUBREP:       {"ESME_RINVSUBREP", "invalid 'submit with replace' request (replace_if_present_flag set)"},
	ESME_RINVESMCLASS:     {"ESME_RINVESMCLASS", "invalid esm_class field data"},
	ESME_RCNTSUBDL:        {"ESME_RCNTSUBDL", "cannot submit to distribution list"},
	ESME_RSUBMITFAIL:      {"ESME_RSUBMITFAIL", "submit_sm or submit_multi failed"},
	ESME_RINVSRCTON:       {"ESME_RINVSRCTON", "invalid source address TON"},
	ESME_RINVSRCNPI:       {"ESME_RINVSRCNPI", "invalid source address NPI"},
	ESME_RINVDSTTON:       {"ESME_RINVDSTTON", "invalid destination address TON"},
	ESME_RINVDSTNPI:       {"ESME_RINVDSTNPI", "invalid destination address NPI"},
	ESME_RINVSYSTYP:       {"ESME_RINVSYSTYP", "invalid system_type field"},
	ESME_RINVREPFLAG:      {"ESME_RINVREPFLAG", "invalid replace_if_present flag"},
	ESME_RINVNUMMSGS:      {"ESME_RINVNUMMSGS", "invalid number of messages"},
	ESME_RTHROTTLED:       {"ESME_RTHROTTLED", "throttling error"},
	ESME_RINVSCHED:        {"ESME_RINVSCHED", "invalid scheduled delivery time"},
	ESME_RINVEXPIRY:       {"ESME_RINVEXPIRY", "invalid message validity period (expiry time)"},
	ESME_RINVDFTMSGID:     {"ESME_RINVDFTMSGID", "predefined message invalid or not found"},
	ESME_RX_T_APPN:        {"ESME_RX_T_APPN", "ESME receiver temporary app error code"},
	ESME_RX_P_APPN:        {"ESME_RX_P_APPN", "ESME receiver permanent app error code"},
	ESME_RX_R_APPN:        {"ESME_RX_R_APPN", "ESME receiver reject message error code"},
	ESME_RQUERYFAIL:       {"ESME_RQUERYFAIL", "query_sm request failed"},
	ESME_RINVOPTPARSTREAM: {"ESME_RINVOPTPARSTREAM", "error in the optional part of the PDU body"},
	ESME_ROPTPARNOTALLWD:  {"ESME_ROPTPARNOTALLWD", "optional parameter not allowed"},
	ESME_RINVPARLEN:       {"ESME_RINVPARLEN", "invalid parameter length"},
	ESME_RMISSINGOPTPARAM: {"ESME_RMISSINGOPTPARAM", "expected optional parameter missing"},
	ESME_RINVOPTPARAMVAL:  {"ESME_RINVOPTPARAMVAL", "invalid optional parameter value"},
	ESME_RDELIVERYFAILURE: {"ESME_RDELIVERYFAILURE", "delivery failure (used for data_sm_resp)"},
	ESME_RUNKNOWNERR:      {"ESME_RUNKNOWNERR", "unknown error"},
}

// Name is the specification's name of the status, such as "ESME_RTHROTTLED".
// Values outside the table are named by their range: 0x400-0x4FF are
// SMSC vendor-specific, the rest reserved.
func (s CommandStatus) Name() string {
	if i, ok := statusTable[s]; ok {
		return i.name
	}
	if s >= 0x400 && s <= 0x4FF {
		return "SMSC_VENDOR_SPECIFIC"
	}
	return "RESERVED"
}

// Meaning is the specification's description of the status.
func (s CommandStatus) Meaning() string {
	if i, ok := statusTable[s]; ok {
		return i.meaning
	}
	if s >= 0x400 && s <= 0x4FF {
		return "SMSC vendor-specific error"
	}
	return "reserved status value"
}

// Known reports whether the status is in the SMPP 3.4 table.
func (s CommandStatus) Known() bool {
	_, ok := statusTable[s]
	return ok
}

// Error renders the status as "ESME_RTHROTTLED (0x00000058): throttling error".
func (s CommandStatus) Error() string {
	return fmt.Sprintf("%s (0x%08X): %s", s.Name(), uint32(s), s.Meaning())
}

// String is the same as Error.
func (s CommandStatus) String() string { return s.Error() }

// Temporary reports whether a request that got this status may succeed if
// sent again later unchanged: throttling, a full queue, a system error, a
// temporary application error at the receiver, or a bind the SMSC no
// longer counts as bound (a new bind takes it; a Pool rebinds).
func (s CommandStatus) Temporary() bool {
	switch s {
	case ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR, ESME_RX_T_APPN, ESME_RINVBNDSTS:
		return true
	}
	return false
}

// Throttling reports whether the peer asks the sender to slow down
// (ESME_RTHROTTLED or ESME_RMSGQFUL).
func (s CommandStatus) Throttling() bool {
	return s == ESME_RTHROTTLED || s == ESME_RMSGQFUL
}

// StatusByName looks a status up by its specification name.
func StatusByName(name string) (CommandStatus, bool) {
	for s, i := range statusTable {
		if i.name == name {
			return s, true
		}
	}
	return 0, false
}
