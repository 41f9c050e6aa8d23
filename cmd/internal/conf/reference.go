package conf

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Reference writes the settings as Markdown: a table per group, in the
// spec's order of groups, headed at the given level ("##").
func (sp *Spec) Reference(level string) string {
	var b strings.Builder
	groups := append([]string(nil), sp.Groups...)
	seen := map[string]bool{}
	for _, g := range groups {
		seen[g] = true
	}
	for _, s := range sp.Settings {
		if !seen[s.Group] {
			seen[s.Group] = true
			groups = append(groups, s.Group)
		}
	}
	for _, g := range groups {
		var rows []Setting
		for _, s := range sp.Settings {
			if s.Group == g {
				rows = append(rows, s)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s %s\n\n", level, g)
		b.WriteString("| flag | environment | YAML key | default | what it does |\n|---|---|---|---|---|\n")
		for _, s := range rows {
			def := s.Default
			switch {
			case def != "":
			case s.Kind == Bool:
				def = "false"
			case s.Kind == Int || s.Kind == Int64 || s.Kind == Float:
				def = "0"
			}
			fmt.Fprintf(&b, "| `--%s` | %s | %s | %s | %s |\n", s.Name, code(sp.EnvVar(s)), code(s.Key), code(def), cell(s.Usage))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// FlagTable writes flags that have no YAML key (those of the operator
// commands) as a Markdown table.
func FlagTable(flags []cli.Flag) string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | what it does |\n|---|---|---|---|\n")
	for _, f := range flags {
		df, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		env := ""
		if e := df.GetEnvVars(); len(e) > 0 {
			env = e[0]
		}
		def := df.GetDefaultText()
		if def == "" {
			def = df.GetValue()
		}
		usage := df.GetUsage()
		if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
			usage = strings.TrimSuffix("required; "+usage, "; ")
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n", f.Names()[0], code(env), code(strings.Trim(def, `"`)), cell(usage))
	}
	return b.String()
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
