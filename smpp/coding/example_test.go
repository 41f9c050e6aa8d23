package coding_test

import (
	"fmt"
	"strings"

	"github.com/otpd/otpd/smpp/coding"
)

func ExampleAuto() {
	dc, b, _ := coding.Auto("Code: 123456 {ok}")
	fmt.Printf("%s % X\n", dc, b)
	dc, b, _ = coding.Auto("Код: 123456")
	fmt.Printf("%s % X\n", dc, b[:4])
	// Output:
	// GSM 03.38 43 6F 64 65 3A 20 31 32 33 34 35 36 20 1B 28 6F 6B 1B 29
	// UCS-2 04 1A 04 3E
}

func ExampleSplit() {
	text := strings.Repeat("Your code is 123456. ", 9) // 189 septets
	res, err := coding.Split(text, coding.SplitOptions{Auto: true, Method: coding.ConcatUDH8, Ref: 0x2A})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range res.Segments {
		fmt.Printf("%d/%d UDH % X, %d septets\n", s.Seq, s.Total, s.UDH, s.Units)
	}
	// Output:
	// 1/2 UDH 05 00 03 2A 02 01, 153 septets
	// 2/2 UDH 05 00 03 2A 02 02, 36 septets
}

func ExampleEncode_unencodable() {
	_, err := coding.Encode("abc€", coding.Latin1)
	fmt.Println(err)
	// Output:
	// character "€" (U+20AC) at offset 3 cannot be encoded in Latin-1
}
