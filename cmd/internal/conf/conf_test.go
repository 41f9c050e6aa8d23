package conf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

var testSpec = &Spec{
	EnvPrefix: "CONFTEST_",
	Sections:  map[string]any{"items": []struct{ Name string }{}},
	Settings: []Setting{
		{Name: "addr", Key: "net.addr", Value: "127.0.0.1:1", Default: "127.0.0.1:1", Group: "g"},
		{Name: "count", Key: "count", Kind: Int, Group: "g"},
		{Name: "rate", Key: "rate", Kind: Float, Group: "g"},
		{Name: "wait", Key: "net.wait", Kind: Duration, Value: time.Second, Group: "g"},
		{Name: "on", Key: "on", Kind: Bool, Group: "h"},
		{Name: "tags", Key: "tags", Kind: List, Group: "h"},
		{Name: "big", Key: "big", Kind: Int64, Group: "h"},
		{Name: "config", Group: "h"},
	},
}

type result struct {
	addr  string
	count int
	rate  float64
	wait  time.Duration
	on    bool
	tags  []string
	big   int64
	items []struct{ Name string }
}

func run(t *testing.T, yaml string, args ...string) (result, error) {
	t.Helper()
	var r result
	var lerr error
	app := &cli.App{Name: "x", Flags: testSpec.Flags(), Action: func(c *cli.Context) error {
		path := ""
		if yaml != "" {
			path = filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(yaml), 0o600)
		}
		f, err := testSpec.Load(c, path)
		if err != nil {
			lerr = err
			return nil
		}
		if _, err := f.Decode("items", &r.items); err != nil {
			lerr = err
			return nil
		}
		r = result{c.String("addr"), c.Int("count"), c.Float64("rate"), c.Duration("wait"), c.Bool("on"), c.StringSlice("tags"), c.Int64("big"), r.items}
		return nil
	}}
	if err := app.Run(append([]string{"x"}, args...)); err != nil {
		return r, err
	}
	return r, lerr
}

func TestLoadKinds(t *testing.T) {
	r, err := run(t, "net:\n  addr: 10.0.0.1:2\n  wait: 3s\ncount: 4\nrate: 5\non: true\ntags: [a, b]\nbig: 9000000000\nitems:\n  - name: one\n")
	if err != nil {
		t.Fatal(err)
	}
	want := result{"10.0.0.1:2", 4, 5, 3 * time.Second, true, []string{"a", "b"}, 9000000000, []struct{ Name string }{{"one"}}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	// A list as one comma-separated string, as in the environment.
	if r, err = run(t, "tags: a, b\n"); err != nil || !reflect.DeepEqual(r.tags, []string{"a", "b"}) {
		t.Fatalf("scalar list: %v %v", err, r.tags)
	}
	// Empty file, empty section: the defaults.
	for _, y := range []string{"\n", "net:\n", "# nothing\n"} {
		if r, err = run(t, y); err != nil || r.addr != "127.0.0.1:1" || r.wait != time.Second {
			t.Fatalf("%q: %v %+v", y, err, r)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	const y = "count: 1\nnet:\n  addr: file:1\n"
	t.Setenv("CONFTEST_COUNT", "2")
	r, err := run(t, y)
	if err != nil || r.count != 2 || r.addr != "file:1" {
		t.Fatalf("env over file: %v %+v", err, r)
	}
	if r, err = run(t, y, "--count", "3", "--addr", "flag:1"); err != nil || r.count != 3 || r.addr != "flag:1" {
		t.Fatalf("flag over env and file: %v %+v", err, r)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"nett:\n  addr: x\n", `line 1: unknown key "nett"`},
		{"net:\n  adr: x\n", `line 2: unknown key "net.adr"`},
		{"count: 1.5\n", `line 1: count: "1.5" is not a whole number`},
		{"on: maybe\n", `line 1: on: "maybe" is not true or false`},
		{"net:\n  wait: soon\n", `line 2: net.wait: "soon" is not a duration`},
		{"net: [1]\n", "line 1: net: want a mapping"},
		{"count: [1]\n", "count: want a single value"},
		{"items:\n  - nme: x\n", `line 2: unknown key "items[0].nme"`},
		{"- 1\n", "the file: want a mapping"},
		{"a: [\n", "line"},
	} {
		_, err := run(t, tt.yaml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

func TestReference(t *testing.T) {
	ref := testSpec.Reference("##")
	for _, want := range []string{
		"## g\n", "## h\n",
		"| `--addr` | `CONFTEST_ADDR` | `net.addr` | `127.0.0.1:1` |",
		"| `--count` | `CONFTEST_COUNT` | `count` | `0` |",
		"| `--on` | `CONFTEST_ON` | `on` | `false` |",
	} {
		if !strings.Contains(ref, want) {
			t.Errorf("reference lacks %q:\n%s", want, ref)
		}
	}
}
