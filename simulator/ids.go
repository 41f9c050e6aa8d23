package simulator

import (
	"encoding/hex"
	"math/big"
	"strconv"
	"strings"
)

// idGen makes message ids from a counter: decimal, hex or a UUID whose
// low 62 bits are the counter (so every form reads back to its number
// without a lookup table).
type idGen struct {
	format string // dec, hex, uuid
	hi     uint64 // uuid: the fixed high half, version 4
}

const uuidVariant = uint64(0x8000000000000000)

func newIDGen(format string, hi uint64) idGen {
	hi = hi&^0xF000 | 0x4000 // version 4 in bits 12-15 of the high half
	return idGen{format: format, hi: hi}
}

func (g *idGen) str(n uint64) string {
	switch g.format {
	case "hex":
		return strconv.FormatUint(n, 16)
	case "uuid":
		return formatUUID(g.hi, uuidVariant|n)
	}
	return strconv.FormatUint(n, 10)
}

// parse reads an id of the simulator's format back to its number.
func (g *idGen) parse(id string) (uint64, bool) {
	id = strings.TrimSpace(id)
	switch g.format {
	case "hex":
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(id), "0x"), 16, 64)
		return n, err == nil
	case "uuid":
		if len(id) != 36 {
			return 0, false
		}
		var b [16]byte
		if _, err := hex.Decode(b[:], []byte(strings.ReplaceAll(id, "-", ""))); err != nil {
			return 0, false
		}
		hi, lo := be64(b[:8]), be64(b[8:])
		if hi != g.hi || lo&0xC000000000000000 != uuidVariant {
			return 0, false
		}
		return lo &^ uuidVariant, true
	}
	n, err := strconv.ParseUint(id, 10, 64)
	return n, err == nil
}

// receiptID is the id of message n written in another base: "same" gives
// the message id, "dec" and "hex" the number (for UUIDs, the whole 128-bit
// value) in that base.
func (g *idGen) receiptID(n uint64, base string) string {
	switch {
	case base == "same" || base == g.format:
		return g.str(n)
	case g.format == "uuid":
		v := new(big.Int).SetUint64(g.hi)
		v.Lsh(v, 64)
		v.Or(v, new(big.Int).SetUint64(uuidVariant|n))
		if base == "hex" {
			return v.Text(16)
		}
		return v.Text(10)
	case base == "hex":
		return strconv.FormatUint(n, 16)
	}
	return strconv.FormatUint(n, 10)
}

func be64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func formatUUID(hi, lo uint64) string {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}
