package otpd

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// sqlText is what a literal holding a statement looks like.
var sqlText = regexp.MustCompile(`\b(SELECT .* FROM|SELECT \w+\(|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX)|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|(UN)?LISTEN [^a-z]|NOTIFY \w)`)

// TestSQLOnlyInStore keeps the domain free of SQL: the statements live in
// the store's files (store*.go), and the service, sender, receipt, key and
// door code calls them by name.
func TestSQLOnlyInStore(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasPrefix(f, "store") || strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && sqlText.MatchString(lit.Value) {
				t.Errorf("%s: SQL outside the store: %.80s", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked only %d files", checked)
	}
}
