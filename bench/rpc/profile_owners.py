"""Split a perf recording's CPU by the owner of the code it ran in.

usage: python3 profile_owners.py PERF_DATA LABEL CPU_US_PER_CALL

Reads `perf report --no-children --sort sym` (self time per symbol) of
PERF_DATA and prints one line per owner: its share of the samples and, with
the process's CPU per call, its microseconds per call. Called by
profile.sh; the owners are those of bench/README.md's "How far the library
can move a framework". The network library is the netpoll package (either
build) and gopool, the pool the reference runs its handlers on.
"""
import collections
import subprocess
import sys

# Runtime functions that allocate, collect or clear memory; the rest of the
# runtime (scheduling, parking, timers, locks) counts as the scheduler.
MEMORY = ("malloc", "gcBgMark", "gcDrain", "scanobject", "scanblock", "greyobject",
          "findObject", "heapBits", "sweep", "memclr", "nextFreeFast", "mspan",
          "mcache", "mcentral", "mheap", "wbBuf", "gcWriteBarrier", "bulkBarrier",
          "typePointers", "markBits", "gcmark", "gcAssist", "newobject", "growslice",
          "makeslice", "memmove", "spanOf", "pageAlloc", "stkbucket", "mProf")

FRAMEWORK = ("cloudwego/kitex", "cloudwego/hertz", "cloudwego/gopkg", "bytedance/gopkg",
             "cloudwego/frugal", "cloudwego/dynamicgo", "apache/thrift", "cloudwego/fastpb",
             "bytedance/sonic", "cloudwego/thriftgo", "cloudwego/localsession", "main.")


def owner(kind, sym):
    if kind == "[k]":
        return "kernel"
    # The raw system-call wrappers of either library: the samples that land
    # in them are mostly the return from the kernel.
    if "netpoll/internal/sys." in sym or sym.endswith(("netpoll.sendmsg", "netpoll.readv", "netpoll.writev")):
        return "system-call entry (Go)"
    if "/bench/rpc/" in sym:
        return "framework, codec, app"  # the generated code and the handlers
    # gopool is the reference's runner: its handlers start there, as ours
    # start in the library's own worker pool.
    if "cloudwego/netpoll" in sym or "ccb70390/netpoll" in sym or "gopkg/util/gopool" in sym:
        return "network library"
    if any(f in sym for f in FRAMEWORK):
        return "framework, codec, app"
    if sym.startswith(("runtime.", "internal/runtime", "sync.", "sync/", "internal/sync")):
        if "yscall" in sym:
            return "system-call entry (Go)"
        if any(m in sym for m in MEMORY):
            return "Go runtime: memory, GC"
        return "Go runtime: scheduler, locks"
    if sym.startswith(("syscall.", "golang.org/x/sys")):
        return "system-call entry (Go)"
    return "other (std, vdso, unknown)"


def shares(path):
    out = subprocess.run(
        ["perf", "report", "-i", path, "--no-children", "--sort", "sym", "-g", "none",
         "--stdio", "--percent-limit", "0"],
        capture_output=True, text=True, check=True).stdout
    total = collections.Counter()
    for line in out.splitlines():
        parts = line.strip().split(None, 2)
        if len(parts) < 3 or not parts[0].endswith("%") or line.lstrip().startswith("#"):
            continue
        total[owner(parts[1], parts[2])] += float(parts[0][:-1])
    return total


def main():
    path, label, us = sys.argv[1], sys.argv[2], float(sys.argv[3])
    total = shares(path)
    print(f"  {label}: {us:.2f} us CPU per call")
    for name, pct in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"    {name:30s} {pct:5.1f}%  {us * pct / 100:6.2f} us")


if __name__ == "__main__":
    main()
