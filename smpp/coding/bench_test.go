package coding

import (
	"strings"
	"testing"
)

const otpText = "Your code is 123456"

func BenchmarkEncodeGSM7(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeGSM7(otpText); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeGSM7(b *testing.B) {
	septets, _ := EncodeGSM7(otpText)
	b.ReportAllocs()
	for b.Loop() {
		_ = DecodeGSM7(septets)
	}
}

func BenchmarkDecode(b *testing.B) {
	septets, _ := EncodeGSM7(otpText)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(septets, Default); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuto(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Auto(otpText); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPackSeptets(b *testing.B) {
	septets, _ := EncodeGSM7(otpText)
	b.ReportAllocs()
	for b.Loop() {
		PackSeptets(septets, 0)
	}
}

func BenchmarkSplitLong(b *testing.B) {
	text := strings.Repeat(otpText+" ", 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Split(text, SplitOptions{Auto: true}); err != nil {
			b.Fatal(err)
		}
	}
}
