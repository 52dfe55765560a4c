package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

// source is the library's source tree the copy is made from.
type source struct {
	dir     string // the module's root: go.mod says module libraryModule
	version string // the VERSION file's content
	module  string // the module version the command was built from, if a release
	commit  string // the checkout's git commit, if dir is one ("+dirty" when modified)
}

// describe names the version for people: "v0.1.0", with the module version
// or the commit when they add something.
func (s *source) describe() string {
	d := s.version
	if s.module != "" && s.module != s.version {
		d += " (module " + s.module + ")"
	}
	if s.commit != "" {
		d += " (commit " + s.commit + ")"
	}
	return d
}

// findSource locates the library's source: from when given; else the tree
// this command was compiled from (go run from a checkout or from the module
// cache records it); else the module version this command was built as,
// fetched with go mod download.
func findSource(from string) (*source, error) {
	if from != "" {
		return loadSource(from)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		if s, err := loadSource(filepath.Join(filepath.Dir(file), "..", "..")); err == nil {
			return s, nil
		}
	}
	if v := builtVersion(); v != "" {
		dir, err := downloadModule(libraryModule + "@" + v)
		if err != nil {
			return nil, err
		}
		return loadSource(dir)
	}
	return nil, fmt.Errorf("cannot find the source of %s: pass -from with a checkout of it", libraryModule)
}

// builtVersion is the module version this command was built as, when it was
// built from a released module (go run or go install with @version).
func builtVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path != libraryModule {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" && !strings.Contains(v, "+dirty") {
		return v
	}
	return ""
}

// downloadModule fetches a module version into the module cache and
// returns its directory.
func downloadModule(modVersion string) (string, error) {
	cmd := exec.Command(goTool(), "mod", "download", "-json", modVersion)
	cmd.Dir = os.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %v: %s", modVersion, err, strings.TrimSpace(stderr.String()))
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVersion, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", modVersion, info.Error)
	}
	return info.Dir, nil
}

// loadSource checks that dir is the library's module root and reads its version.
func loadSource(dir string) (*source, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if path, err := modulePath(filepath.Join(dir, "go.mod")); err != nil {
		return nil, err
	} else if path != libraryModule {
		return nil, fmt.Errorf("%s holds module %s, not %s", dir, path, libraryModule)
	}
	v, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		return nil, fmt.Errorf("the library's VERSION file: %w", err)
	}
	s := &source{dir: dir, version: strings.TrimSpace(string(v)), module: builtVersion()}
	s.commit = gitCommit(dir)
	return s, nil
}

// modulePath reads the module line of a go.mod file.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s has no module line", gomod)
}

// gitCommit names the commit of a checkout, with "+dirty" when files differ
// from it; "" when dir is no git checkout or git is missing.
func gitCommit(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		return ""
	}
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	status, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output()
	if err == nil && len(bytes.TrimSpace(status)) > 0 {
		commit += "+dirty"
	}
	return commit
}
