package dlr_test

import (
	"fmt"
	"time"

	"github.com/otpd/otpd/smpp/dlr"
)

func ExampleParse() {
	r, err := dlr.Parse("id:2D6F0B6F sub:001 dlvrd:001 submit date:2405011230 done date:240501123145 stat:DELIVRD err:000 Text:Your code")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.ID, r.State, r.State.Final(), r.Err, r.DoneDate.Format(time.DateTime))
	// Output: 2D6F0B6F DELIVERED true 000 2024-05-01 12:31:45
}

func ExampleFormat() {
	fmt.Println(dlr.Format(dlr.Receipt{
		ID:         "762252143",
		Sub:        1,
		Dlvrd:      0,
		SubmitDate: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC),
		DoneDate:   time.Date(2024, 5, 1, 12, 35, 0, 0, time.UTC),
		State:      dlr.Undeliverable,
		Err:        "00B",
	}))
	// Output: id:762252143 sub:001 dlvrd:000 submit date:2405011230 done date:2405011235 stat:UNDELIV err:00B text:
}

func ExampleIDForms() {
	// submit_sm_resp gave the id in decimal; store the message under its
	// canonical key.
	key := dlr.Canonical("762252143")
	// The receipt gives it in hex: look up every form, first hit wins.
	for _, form := range dlr.IDForms("2d6f0b6f") {
		if form == key {
			fmt.Println("found under", form)
		}
	}
	fmt.Println(dlr.SameID("2d6f0b6f", "762252143"))
	// Output:
	// found under 762252143
	// true
}
