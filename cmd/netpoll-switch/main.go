// Command netpoll-switch puts github.com/ccb70390/netpoll in place of
// github.com/cloudwego/netpoll inside a Go module that uses Kitex, Hertz or
// the reference library directly, and takes it out again.
//
// Kitex and Hertz import github.com/cloudwego/netpoll themselves, so changing
// an import path does not reach them; a replace directive does. A replace
// cannot point at this module as it is, because its own files import
// github.com/ccb70390/netpoll/...; so the command writes a copy of the
// library under the reference's module path (imports rewritten; no tests,
// benchmarks or examples) into the project, stamps it with the version it
// came from, and points the project at it:
//
//	go run github.com/ccb70390/netpoll/cmd/netpoll-switch@latest          # switch (or update)
//	go run github.com/ccb70390/netpoll/cmd/netpoll-switch@latest -revert  # back to cloudwego/netpoll
//
// run in the project's module root (or anywhere below it). Switching
//  1. writes the copy to ./third_party/netpoll (-dir), replacing an earlier
//     copy of its own and refusing to touch a directory it did not write;
//  2. runs go mod edit -replace=github.com/cloudwego/netpoll=./third_party/netpoll;
//  3. runs go mod tidy (-tidy=false leaves that to you), which picks up the
//     library's requirements and, if the project's go line is older than the
//     library's floor, raises it.
//
// -revert drops the replace (only one that points at the copy), removes the
// copy and runs go mod tidy. The go line and any requirement that tidy
// raised stay raised; restore go.mod from version control for the exact
// state before.
//
// From a checkout of github.com/ccb70390/netpoll instead of a release:
//
//	go run -C /path/to/netpoll ./cmd/netpoll-switch -project "$PWD"
//
// The copy's netpoll-switch.txt and VERSION say which version of the library
// it holds; go version -m on a built binary shows the replace, and the
// library logs one line naming itself when the first EventLoop is made.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	// libraryModule is this library's module path, the one the copy's
	// imports are rewritten from.
	libraryModule = "github.com/ccb70390/netpoll"
	// referenceModule is the module path the copy takes, so that Kitex's and
	// Hertz's imports resolve to it.
	referenceModule = "github.com/cloudwego/netpoll"
	// defaultDir is where the copy goes, relative to the project's root.
	defaultDir = "third_party/netpoll"
	// markerName names the file that marks a directory as written by this
	// command; a directory without it is never replaced or removed.
	markerName = "netpoll-switch.txt"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	project string // a directory inside the project's module
	dir     string // where the copy goes, relative to the project's root
	from    string // the library's source; found by itself when empty
	revert  bool
	tidy    bool
	version bool
}

// run is the command without the process around it, for tests. It returns
// the exit code: 0 on success, 1 on failure, 2 for bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("netpoll-switch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.project, "project", ".", "a directory inside the Go module to switch")
	fs.StringVar(&o.dir, "dir", defaultDir, "where the copy goes, relative to the module's root")
	fs.StringVar(&o.from, "from", "", "the library's source (a checkout of "+libraryModule+"); found by itself when empty")
	fs.BoolVar(&o.revert, "revert", false, "switch back to "+referenceModule+": drop the replace and remove the copy")
	fs.BoolVar(&o.tidy, "tidy", true, "run go mod tidy after changing go.mod")
	fs.BoolVar(&o.version, "version", false, "print the version of the library this command writes, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: netpoll-switch [-project DIR] [-dir %s] [-revert] [-tidy=false] [-from SRC] [-version]\n", defaultDir)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "netpoll-switch: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	var err error
	switch {
	case o.version:
		err = printVersion(o, stdout)
	case o.revert:
		err = revert(o, stdout)
	default:
		err = switchTo(o, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "netpoll-switch: %v\n", err)
		return 1
	}
	return 0
}

func printVersion(o options, stdout io.Writer) error {
	src, err := findSource(o.from)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", libraryModule, src.describe())
	return nil
}

// switchTo writes the copy and points the project at it.
func switchTo(o options, stdout io.Writer) error {
	p, err := findProject(o.project, o.dir)
	if err != nil {
		return err
	}
	src, err := findSource(o.from)
	if err != nil {
		return err
	}
	if !p.requiresReference() {
		fmt.Fprintf(stdout, "note: %s does not require %s yet; the replace takes effect once it does\n", p.module, referenceModule)
	}
	if err := writeCopy(src, p.target, p.relTarget); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s %s to %s as %s\n", libraryModule, src.describe(), p.relTarget, referenceModule)
	replace := referenceModule + "=./" + p.relTarget
	if err := goCmd(p.root, stdout, "mod", "edit", "-replace="+replace); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "go.mod: replace %s => ./%s\n", referenceModule, p.relTarget)
	if o.tidy {
		if err := goCmd(p.root, stdout, "mod", "tidy"); err != nil {
			return fmt.Errorf("%w (the copy and the replace are in place; fix the cause, then run go mod tidy)", err)
		}
		fmt.Fprintln(stdout, "go mod tidy: done")
	} else {
		fmt.Fprintln(stdout, "run go mod tidy next")
	}
	fmt.Fprintf(stdout, "switched: build as usual; switch back with netpoll-switch -revert\n")
	return nil
}

// revert drops the replace that points at the copy and removes the copy.
func revert(o options, stdout io.Writer) error {
	p, err := findProject(o.project, o.dir)
	if err != nil {
		return err
	}
	switch to, ok := p.replacement(); {
	case !ok:
		fmt.Fprintf(stdout, "go.mod has no replace for %s\n", referenceModule)
	case filepath.Clean(filepath.FromSlash(to)) != filepath.Clean(p.relTarget):
		return fmt.Errorf("go.mod replaces %s with %s, not with the copy at ./%s; leaving it alone", referenceModule, to, p.relTarget)
	default:
		if err := goCmd(p.root, stdout, "mod", "edit", "-dropreplace="+referenceModule); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "go.mod: dropped replace %s => %s\n", referenceModule, to)
	}
	removed, err := removeCopy(p.target)
	if err != nil {
		return err
	}
	if removed {
		removeEmptyParents(p.root, p.target)
		fmt.Fprintf(stdout, "removed %s\n", p.relTarget)
	}
	if o.tidy {
		if err := goCmd(p.root, stdout, "mod", "tidy"); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "go mod tidy: done")
	}
	fmt.Fprintf(stdout, "reverted: %s is used again\n", referenceModule)
	return nil
}

// goCmd runs the go command in dir, its output going to out.
func goCmd(dir string, out io.Writer, args ...string) error {
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w", strings.Join(args, " "), dir, err)
	}
	return nil
}

// goTool is the go command: the one that built this program when it is
// still there (go run sets GOROOT for it), else the one on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); isFile(p) {
			return p
		}
	}
	return "go"
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
