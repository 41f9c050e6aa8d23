package integration

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// images are the Dockerfiles under deploy/ and the command each builds.
var images = []struct{ dockerfile, pkg, bin string }{
	{"../deploy/otpd.Dockerfile", "./cmd/otpd", "otpd"},
	{"../deploy/smscsim.Dockerfile", "./cmd/smscsim", "smscsim"},
}

// TestStaticBuild: the build the Dockerfiles run (CGO_ENABLED=0) works and
// gives binaries with no dynamic loader and no shared library, so that
// they run on an image with no libc.
func TestStaticBuild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, im := range images {
		out := filepath.Join(dir, im.bin)
		ctx, cancel := context.WithTimeout(context.Background(), buildLimit)
		cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", out, im.pkg)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		b, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("CGO_ENABLED=0 go build %s: %v\n%s", im.pkg, err, b)
		}
		f, err := elf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has a dynamic loader (PT_INTERP): not static", im.bin)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v (%v)", im.bin, libs, err)
		}
		f.Close()
	}
}

// dockerfile is what TestDockerfiles reads of one.
type dockerfile struct {
	stages     int
	buildRun   string   // the RUN with go build
	user       string   // USER of the last stage
	env        []string // ENV names of the last stage
	entrypoint string
	copies     []string // COPY destinations of the last stage
}

func readDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(b), " ")
	var d dockerfile
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			d.stages++
			d.user, d.env, d.copies = "", nil, nil
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.buildRun = rest
			}
		case "USER":
			d.user = rest
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				if k, _, ok := strings.Cut(kv, "="); ok {
					d.env = append(d.env, k)
				}
			}
		case "ENTRYPOINT":
			d.entrypoint = rest
		case "COPY":
			f := strings.Fields(rest)
			d.copies = append(d.copies, f[len(f)-1])
		}
	}
	return d
}

// TestDockerfiles: each Dockerfile is multi-stage, builds its command
// static, runs it as a user other than root, and sets only variables the
// binary reads.
func TestDockerfiles(t *testing.T) {
	otpdBin, simBin := binaries(t)
	help := map[string]string{"otpd": runHelp(t, otpdBin, "serve", "--help") + runHelp(t, otpdBin, "keys", "create", "--help"),
		"smscsim": runHelp(t, simBin, "--help")}
	for _, im := range images {
		d := readDockerfile(t, im.dockerfile)
		if d.stages < 2 {
			t.Errorf("%s: %d stages, want a build stage and a run stage", im.dockerfile, d.stages)
		}
		if !strings.Contains(d.buildRun, "CGO_ENABLED=0") || !strings.Contains(d.buildRun, im.pkg) {
			t.Errorf("%s: the build %q is not CGO_ENABLED=0 of %s", im.dockerfile, d.buildRun, im.pkg)
		}
		if u, _, _ := strings.Cut(d.user, ":"); u == "" || u == "root" || u == "0" {
			t.Errorf("%s: the image runs as %q, want a non-root user", im.dockerfile, d.user)
		}
		if !strings.Contains(d.entrypoint, "/"+im.bin+`"`) || !contains(d.copies, strings.Trim(strings.Fields(strings.Trim(d.entrypoint, "[]"))[0], `",`)) {
			t.Errorf("%s: ENTRYPOINT %s is not the binary copied (%v)", im.dockerfile, d.entrypoint, d.copies)
		}
		for _, k := range d.env {
			if !strings.Contains(help[im.bin], "$"+k+"]") {
				t.Errorf("%s: ENV %s is no variable of %s", im.dockerfile, k, im.bin)
			}
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func runHelp(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

// TestComposeFile: the example compose file builds from the Dockerfiles,
// publishes on loopback only, and sets only variables the binaries read.
func TestComposeFile(t *testing.T) {
	otpdBin, simBin := binaries(t)
	help := map[string]string{"otpd.Dockerfile": runHelp(t, otpdBin, "serve", "--help"), "smscsim.Dockerfile": runHelp(t, simBin, "--help")}
	b, err := os.ReadFile("../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image string `yaml:"image"`
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"otpd", "smscsim", "postgres"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond loopback", name, p)
			}
		}
		if s.Build == nil {
			continue
		}
		df := filepath.Join("../deploy", s.Build.Context, s.Build.Dockerfile)
		if _, err := os.Stat(df); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		h := help[filepath.Base(df)]
		for k := range s.Environment {
			if !strings.Contains(h, "$"+k+"]") && k != "SMSCSIM_ACCOUNT" { // ACCOUNT: read by hand, space-separated
				t.Errorf("%s: %s is no variable of its binary", name, k)
			}
		}
	}
}

// TestDockerBuild builds the images where a docker engine answers; CI
// without one skips it (the tests above check what they can without).
func TestDockerBuild(t *testing.T) {
	if os.Getenv("OTPD_DOCKER_BUILD") == "0" {
		t.Skip("OTPD_DOCKER_BUILD=0")
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, docker, "info").Run(); err != nil {
		t.Skipf("docker has no engine here: %v", err)
	}
	for _, im := range images {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		cmd := exec.CommandContext(ctx, docker, "build", "-f", strings.TrimPrefix(im.dockerfile, "../"), "-t", "otpd-test/"+im.bin, ".")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("docker build %s: %v\n%s", im.dockerfile, err, out)
		}
	}
}
