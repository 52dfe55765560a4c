package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// project is the Go module being switched.
type project struct {
	root      string // the directory holding its go.mod
	module    string // its module path
	target    string // the copy's directory, absolute
	relTarget string // the copy's directory relative to root, slash-separated
	gomod     goMod
}

// goMod is the part of go mod edit -json's output the command reads.
type goMod struct {
	Module  struct{ Path string }
	Go      string
	Require []struct {
		Path     string
		Version  string
		Indirect bool
	}
	Replace []struct {
		Old struct{ Path, Version string }
		New struct{ Path, Version string }
	}
}

// readGoMod parses the go.mod in dir with the go command, so every
// directive the toolchain knows is read the way it reads it.
func readGoMod(dir string) (goMod, error) {
	var m goMod
	cmd := exec.Command(goTool(), "mod", "edit", "-json")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return m, fmt.Errorf("go mod edit -json in %s: %v: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("go mod edit -json in %s: %w", dir, err)
	}
	return m, nil
}

// findProject finds the module that holds start and checks that dir is a
// place inside it where the copy may go.
func findProject(start, dir string) (*project, error) {
	abs, err := filepath.Abs(start)
	if err != nil {
		return nil, err
	}
	root := abs
	for !isFile(filepath.Join(root, "go.mod")) {
		parent := filepath.Dir(root)
		if parent == root {
			return nil, fmt.Errorf("no go.mod in %s or above it: run in the root of the module to switch, or pass -project", abs)
		}
		root = parent
	}
	rel := filepath.Clean(filepath.FromSlash(dir))
	if filepath.IsAbs(rel) || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("-dir %q must be a directory below the module's root", dir)
	}
	m, err := readGoMod(root)
	if err != nil {
		return nil, err
	}
	switch m.Module.Path {
	case libraryModule, referenceModule:
		return nil, fmt.Errorf("%s is %s itself; run in the module that uses it", root, m.Module.Path)
	}
	return &project{
		root:      root,
		module:    m.Module.Path,
		target:    filepath.Join(root, rel),
		relTarget: filepath.ToSlash(rel),
		gomod:     m,
	}, nil
}

// requiresReference reports whether go.mod requires the reference, directly
// or as an indirect dependency.
func (p *project) requiresReference() bool {
	for _, r := range p.gomod.Require {
		if r.Path == referenceModule {
			return true
		}
	}
	return false
}

// replacement returns where go.mod's replace sends the reference, if it has one.
func (p *project) replacement() (string, bool) {
	for _, r := range p.gomod.Replace {
		if r.Old.Path == referenceModule {
			if r.New.Version != "" {
				return r.New.Path + "@" + r.New.Version, true
			}
			return r.New.Path, true
		}
	}
	return "", false
}

// removeCopy removes a copy this command wrote. It reports false when there
// is nothing there, and refuses a directory without the marker.
func removeCopy(target string) (bool, error) {
	if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if !isFile(filepath.Join(target, markerName)) {
		return false, fmt.Errorf("%s has no %s: it was not written by netpoll-switch, so it is left alone", target, markerName)
	}
	if err := os.RemoveAll(target); err != nil {
		return false, err
	}
	return true, nil
}

// removeEmptyParents removes the directories between target and root that
// the copy's removal left empty (third_party/ when it held only the copy).
func removeEmptyParents(root, target string) {
	for dir := filepath.Dir(target); dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			return
		}
	}
}
