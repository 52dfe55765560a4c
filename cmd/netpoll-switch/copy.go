package main

import (
	"bytes"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// skippedTop are the source tree's top-level directories that are not part
// of the library a program imports: tools, tests and examples.
var skippedTop = map[string]bool{
	"bench": true, "cmd": true, "compat": true, "conformance": true,
	"examples": true, "netpollprom": true,
}

// keptTopFiles are the files besides Go sources that travel with the copy.
var keptTopFiles = []string{"LICENSE", "NOTICE", "VERSION"}

// writeCopy writes the library from src into target under the reference's
// module path. It writes a sibling temporary directory first and swaps it
// in, so a failure leaves an earlier copy as it was; an existing target
// must carry the marker of an earlier run.
func writeCopy(src *source, target, relTarget string) error {
	if _, err := os.Stat(target); err == nil && !isFile(filepath.Join(target, markerName)) {
		return fmt.Errorf("%s exists and has no %s: it was not written by netpoll-switch; move it away or pass -dir", target, markerName)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(target), ".netpoll-switch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	imports, err := copyTree(src.dir, tmp)
	if err != nil {
		return err
	}
	for _, name := range keptTopFiles {
		if err := copyFile(filepath.Join(src.dir, name), filepath.Join(tmp, name)); err != nil {
			return err
		}
	}
	if err := writeGoMod(src, tmp, imports); err != nil {
		return err
	}
	if err := writeMarker(src, tmp, relTarget); err != nil {
		return err
	}
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	return os.Rename(tmp, target)
}

// copyTree copies the library's non-test Go files (and assembly) from src
// to dst, rewriting its own import paths, and returns every non-standard
// import path the copied files use.
func copyTree(src, dst string) (map[string]bool, error) {
	imports := map[string]bool{}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			name := d.Name()
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" ||
				(!strings.Contains(rel, string(filepath.Separator)) && skippedTop[name]) ||
				isFile(filepath.Join(path, "go.mod")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		name := d.Name()
		switch {
		case strings.HasSuffix(name, "_test.go"):
			return nil
		case strings.HasSuffix(name, ".go"):
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out, used, err := rewriteImports(path, data)
			if err != nil {
				return err
			}
			for _, p := range used {
				imports[p] = true
			}
			return writeFile(filepath.Join(dst, rel), out)
		case strings.HasSuffix(name, ".s"):
			return copyFile(path, filepath.Join(dst, rel))
		}
		return nil
	})
	return imports, err
}

// rewriteImports changes every import of libraryModule (or a package below
// it) in a Go file to the same path under referenceModule. Only import
// specs change: strings and comments that name the library keep its name.
// It also returns the file's imports that are outside the standard library.
func rewriteImports(name string, src []byte) ([]byte, []string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, nil, err
	}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	var used []string
	for _, spec := range f.Imports {
		path, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: import %s: %w", name, spec.Path.Value, err)
		}
		if path == libraryModule || strings.HasPrefix(path, libraryModule+"/") {
			edits = append(edits, edit{
				start: fset.Position(spec.Path.Pos()).Offset,
				end:   fset.Position(spec.Path.End()).Offset,
				text:  strconv.Quote(referenceModule + path[len(libraryModule):]),
			})
			continue
		}
		if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
			used = append(used, path)
		}
	}
	if len(edits) == 0 {
		return src, used, nil
	}
	out := slices.Clone(src)
	for i := len(edits) - 1; i >= 0; i-- {
		e := edits[i]
		out = slices.Concat(out[:e.start], []byte(e.text), out[e.end:])
	}
	formatted, err := format.Source(out)
	if err != nil {
		return nil, nil, fmt.Errorf("%s after rewriting imports: %w", name, err)
	}
	return formatted, used, nil
}

// writeGoMod writes the copy's go.mod: the reference's module path, the
// library's go line, and those of its requirements that the copied files
// import (test-only ones, such as goleak, stay out of the project's graph).
func writeGoMod(src *source, dst string, imports map[string]bool) error {
	m, err := readGoMod(src.dir)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Written by netpoll-switch from %s %s; do not edit.\n", libraryModule, src.describe())
	fmt.Fprintf(&b, "module %s\n\ngo %s\n", referenceModule, m.Go)
	var reqs []string
	for _, r := range m.Require {
		for p := range imports {
			if p == r.Path || strings.HasPrefix(p, r.Path+"/") {
				reqs = append(reqs, r.Path+" "+r.Version)
				break
			}
		}
	}
	sort.Strings(reqs)
	if len(reqs) > 0 {
		b.WriteString("\nrequire (\n")
		for _, r := range reqs {
			b.WriteString("\t" + r + "\n")
		}
		b.WriteString(")\n")
	}
	return writeFile(filepath.Join(dst, "go.mod"), b.Bytes())
}

// writeMarker writes the file that says what the directory is, which
// version it holds, and how to update or remove it.
func writeMarker(src *source, dst, relTarget string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "This directory was written by netpoll-switch. Do not edit it: re-running the command replaces it.\n\n")
	fmt.Fprintf(&b, "library:     %s\n", libraryModule)
	fmt.Fprintf(&b, "version:     %s\n", src.describe())
	fmt.Fprintf(&b, "module path: %s (the library's own imports rewritten)\n", referenceModule)
	fmt.Fprintf(&b, "written:     %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "go.mod has:  replace %s => ./%s\n", referenceModule, relTarget)
	fmt.Fprintf(&b, "update:      go run %s/cmd/netpoll-switch@latest\n", libraryModule)
	fmt.Fprintf(&b, "switch back: go run %s/cmd/netpoll-switch@latest -revert\n", libraryModule)
	fmt.Fprintf(&b, "licence:     Apache-2.0, see LICENSE\n")
	return writeFile(filepath.Join(dst, markerName), b.Bytes())
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return writeFile(to, data)
}

// writeFile writes data with ordinary permissions: the source may be the
// read-only module cache.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
