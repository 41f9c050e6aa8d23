// Package conf gives the commands one definition per setting: its flag,
// its environment variable and its YAML key all come from a Setting. The
// YAML file reaches the flags through urfave/cli's altsrc, so a command
// reads every value as a flag's, and the precedence is the library's:
// flag, then environment, then file, then default.
package conf

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"
)

// Kind is the type of a setting's value.
type Kind int

const (
	String Kind = iota
	Int
	Int64
	Float
	Duration
	Bool
	List // a list of strings: repeated flags, a comma-separated variable, a YAML sequence
)

// Setting is one setting.
type Setting struct {
	Name  string // flag name, without the dashes
	Key   string // YAML key as a dotted path ("smsc.addr"); "" when the file cannot set it
	Env   string // environment variable; "" derives it from the prefix and Name; "-" for none
	Kind  Kind
	Usage string
	Group string // heading the reference lists the setting under
	// Value is the flag's own default. Nil leaves the flag empty, so that
	// the program's defaults apply to what no source set.
	Value any
	// Default is the default as --help and the reference show it.
	Default string
}

// Spec is the settings of one command.
type Spec struct {
	EnvPrefix string // "OTPD_"
	Settings  []Setting
	// Sections are YAML keys that take a structure no flag carries (a
	// list of accounts, a map of templates), each with a value of the Go
	// type its YAML decodes into; the keys inside are checked against it.
	Sections map[string]any
	// Groups orders the reference's headings.
	Groups []string
}

// EnvVar is the environment variable of s ("" for none).
func (sp *Spec) EnvVar(s Setting) string {
	switch s.Env {
	case "-":
		return ""
	case "":
		return sp.EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", "+", "_", ".", "_").Replace(s.Name))
	}
	return s.Env
}

// Flags makes the command's flags, one for each setting, each able to take
// its value from the YAML file.
func (sp *Spec) Flags() []cli.Flag {
	flags := make([]cli.Flag, 0, len(sp.Settings))
	for _, s := range sp.Settings {
		flags = append(flags, sp.flag(s))
	}
	return flags
}

func (sp *Spec) flag(s Setting) cli.Flag {
	var env []string
	if e := sp.EnvVar(s); e != "" {
		env = []string{e}
	}
	usage := s.Usage
	if s.Key != "" {
		usage += " [" + s.Key + "]"
	}
	switch s.Kind {
	case String:
		f := &cli.StringFlag{Name: s.Name, Usage: usage, EnvVars: env, DefaultText: s.Default}
		if s.Value != nil {
			f.Value = s.Value.(string)
		}
		return altsrc.NewStringFlag(f)
	case Int:
		f := &cli.IntFlag{Name: s.Name, Usage: usage, EnvVars: env, DefaultText: s.Default}
		if s.Value != nil {
			f.Value = s.Value.(int)
		}
		return altsrc.NewIntFlag(f)
	case Int64:
		f := &cli.Int64Flag{Name: s.Name, Usage: usage, EnvVars: env, DefaultText: s.Default}
		if s.Value != nil {
			f.Value = s.Value.(int64)
		}
		return altsrc.NewInt64Flag(f)
	case Float:
		f := &cli.Float64Flag{Name: s.Name, Usage: usage, EnvVars: env, DefaultText: s.Default}
		if s.Value != nil {
			f.Value = s.Value.(float64)
		}
		return altsrc.NewFloat64Flag(f)
	case Duration:
		f := &cli.DurationFlag{Name: s.Name, Usage: usage, EnvVars: env, DefaultText: s.Default}
		if s.Value != nil {
			f.Value = s.Value.(time.Duration)
		}
		return altsrc.NewDurationFlag(f)
	case Bool:
		f := &cli.BoolFlag{Name: s.Name, Usage: usage, EnvVars: env, DefaultText: s.Default}
		if s.Value != nil {
			f.Value = s.Value.(bool)
		}
		return altsrc.NewBoolFlag(f)
	case List:
		f := &cli.StringSliceFlag{Name: s.Name, Usage: usage, EnvVars: env, DefaultText: s.Default}
		if s.Value != nil {
			f.Value = cli.NewStringSlice(s.Value.([]string)...)
		}
		return altsrc.NewStringSliceFlag(f)
	}
	panic("conf: unknown kind of setting " + s.Name)
}

// File is a loaded YAML file: what it gave the flags is in them; the
// sections wait for Decode.
type File struct {
	Path     string
	sections map[string]*yaml.Node
}

// Decode decodes the section key into dst; it reports whether the file has
// the section.
func (f *File) Decode(key string, dst any) (bool, error) {
	n, ok := f.sections[key]
	if !ok {
		return false, nil
	}
	if err := n.Decode(dst); err != nil {
		return true, fmt.Errorf("config file %s: %s: %w", f.Path, key, yamlErr(err))
	}
	return true, nil
}

// Load reads the YAML file at path ("" for none) and gives each flag of
// c's command that neither the command line nor the environment set the
// file's value. A key the spec does not know is an error that names it and
// its line.
func (sp *Spec) Load(c *cli.Context, path string) (*File, error) {
	f := &File{Path: path, sections: map[string]*yaml.Node{}}
	if path == "" {
		return f, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, yamlErr(err))
	}
	values := map[interface{}]interface{}{}
	if len(doc.Content) > 0 {
		if err := sp.walk(f, values, doc.Content[0], ""); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	flags := c.Command.Flags
	if c.Command.Name == "" || len(flags) == 0 {
		flags = c.App.Flags
	}
	if err := altsrc.ApplyInputSourceValues(c, altsrc.NewMapInputSource(path, values), flags); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return f, nil
}

func (sp *Spec) walk(f *File, values map[interface{}]interface{}, n *yaml.Node, prefix string) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty file or section
	}
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if prefix != "" {
			what = strings.TrimSuffix(prefix, ".")
		}
		return fmt.Errorf("line %d: %s: want a mapping of keys", n.Line, what)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		if s, ok := sp.setting(key); ok {
			val, err := value(s, v)
			if err != nil {
				return fmt.Errorf("line %d: %s: %w", v.Line, key, err)
			}
			values[s.Name] = val
			continue
		}
		if typ, ok := sp.Sections[key]; ok {
			if err := check(v, reflect.TypeOf(typ), key); err != nil {
				return err
			}
			f.sections[key] = v
			continue
		}
		if !sp.hasPrefix(key + ".") {
			return fmt.Errorf("line %d: unknown key %q", k.Line, key)
		}
		if err := sp.walk(f, values, v, key+"."); err != nil {
			return err
		}
	}
	return nil
}

func (sp *Spec) setting(key string) (Setting, bool) {
	for _, s := range sp.Settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

func (sp *Spec) hasPrefix(p string) bool {
	for _, s := range sp.Settings {
		if strings.HasPrefix(s.Key, p) {
			return true
		}
	}
	for k := range sp.Sections {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// value converts a YAML value into the type altsrc's map source wants
// for the setting's flag.
func value(s Setting, n *yaml.Node) (any, error) {
	if s.Kind == List {
		var out []interface{}
		switch n.Kind {
		case yaml.SequenceNode:
			for _, e := range n.Content {
				if e.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: want a list of strings", e.Line)
				}
				out = append(out, e.Value)
			}
		case yaml.ScalarNode:
			for _, e := range strings.Split(n.Value, ",") {
				if e = strings.TrimSpace(e); e != "" {
					out = append(out, e)
				}
			}
		default:
			return nil, errors.New("want a list of strings")
		}
		if out == nil {
			out = []interface{}{}
		}
		return out, nil
	}
	if n.Kind != yaml.ScalarNode {
		return nil, errors.New("want a single value, not a list or mapping")
	}
	var err error
	switch s.Kind {
	case String:
		var v string
		if err = n.Decode(&v); err == nil {
			return v, nil
		}
	case Int:
		var v int
		if n.ShortTag() != "!!int" {
			return nil, fmt.Errorf("%q is not a whole number", n.Value)
		}
		if err = n.Decode(&v); err == nil {
			return v, nil
		}
		return nil, fmt.Errorf("%q is not a whole number", n.Value)
	case Int64:
		var v int64
		if n.ShortTag() != "!!int" {
			return nil, fmt.Errorf("%q is not a whole number", n.Value)
		}
		if err = n.Decode(&v); err == nil {
			return v, nil
		}
		return nil, fmt.Errorf("%q is not a whole number", n.Value)
	case Float:
		var v float64
		if err = n.Decode(&v); err == nil {
			return v, nil
		}
		return nil, fmt.Errorf("%q is not a number", n.Value)
	case Duration:
		v, err := time.ParseDuration(n.Value)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration such as 500ms, 30s or 5m", n.Value)
		}
		return v, nil
	case Bool:
		var v bool
		if err = n.Decode(&v); err == nil {
			return v, nil
		}
		return nil, fmt.Errorf("%q is not true or false", n.Value)
	}
	return nil, yamlErr(err)
}

var (
	yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*interface{ UnmarshalText([]byte) error })(nil)).Elem()
)

// check refuses keys inside a section that its Go type has no field for.
// Types that decode themselves are taken whole.
func check(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // Decode reports the mismatch with its line
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			fields[name] = sf.Type
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				known := make([]string, 0, len(fields))
				for f := range fields {
					known = append(known, f)
				}
				sort.Strings(known)
				return fmt.Errorf("line %d: unknown key %q (known: %s)", k.Line, path+"."+k.Value, strings.Join(known, ", "))
			}
			if err := check(n.Content[i+1], ft, path+"."+k.Value); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, e := range n.Content {
			if err := check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := check(n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlErr drops yaml.v3's "yaml: unmarshal errors:" preamble, keeping the
// lines that say what and where.
func yamlErr(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	if err == nil {
		return nil
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}
