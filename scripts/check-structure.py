#!/usr/bin/env python3
"""Structure gates that CI runs (see docs/architecture.md, "Rules"):

1. ferry-unpack's dependency tree stays at or under the figure README.md records
   (counted the way the README says: cargo tree -p ferry-unpack --edges normal --prefix none
   | sort -u | wc -l);
2. no function outside tests is longer than 120 lines;
3. no import cycle between the modules of a crate (between siblings: a module may use its own
   submodules and its ancestors).

Usage: python3 scripts/check-structure.py [--no-deps]
Exits 1 and says what is wrong when a gate fails.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = {
    "ferry_format": "format-spec/src",
    "ferry_term": "term/src",
    "ferry_registry": "registry/src",
    "ferry_pack": "packer/src",
    "ferry_unpack": "unpacker/src",
    "ferry_fixtures": "fixtures/src",
    "ferry_bench": "bench/src",
    "ferry_e2e": "tests/src",
}
MAX_FUNCTION_LINES = 120
FIGURE = re.compile(r"ferry-unpack dependency figure: (\d+)")


def rust_files(src):
    for dirpath, _, names in os.walk(os.path.join(ROOT, src)):
        for n in sorted(names):
            if n.endswith(".rs"):
                yield os.path.join(dirpath, n)


def strip_strings_and_comments(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//")[0]


def without_test_modules(lines):
    """The lines of a file, with `#[cfg(test)] mod ... { }` blocks blanked out."""
    out = list(lines)
    i = 0
    while i < len(out):
        if out[i].strip() == "#[cfg(test)]" and i + 1 < len(out) and re.match(r"\s*(pub\s+)?mod \w+\s*\{", out[i + 1]):
            depth, j = 0, i + 1
            while j < len(out):
                s = strip_strings_and_comments(out[j])
                depth += s.count("{") - s.count("}")
                out[j] = ""
                if depth <= 0 and "{" in "".join(lines[i + 1:j + 1]):
                    break
                j += 1
            out[i] = ""
            i = j
        i += 1
    return out


FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(unsafe\s+)?(async\s+)?fn\s+(\w+)")


def long_functions():
    found = []
    for src in CRATES.values():
        for path in rust_files(src):
            if os.path.basename(path) == "tests.rs":
                continue
            lines = without_test_modules(open(path, encoding="utf-8").read().split("\n"))
            i = 0
            while i < len(lines):
                m = FN.match(lines[i])
                if not m:
                    i += 1
                    continue
                depth, j, opened = 0, i, False
                while j < len(lines):
                    s = strip_strings_and_comments(lines[j])
                    if not opened and s.rstrip().endswith(";") and "{" not in s:
                        break
                    for ch in s:
                        if ch == "{":
                            depth += 1
                            opened = True
                        elif ch == "}":
                            depth -= 1
                    if opened and depth == 0:
                        break
                    j += 1
                length = j - i + 1
                if opened and length > MAX_FUNCTION_LINES:
                    found.append((length, os.path.relpath(path, ROOT), i + 1, m.group(6)))
                i = j + 1 if opened else i + 1
    return sorted(found, reverse=True)


def module_paths(src):
    """Module path (tuple) of every file of a crate."""
    root = os.path.join(ROOT, src)
    mods = {}
    for path in rust_files(src):
        rel = os.path.relpath(path, root)[:-3].split(os.sep)
        if rel[-1] in ("lib", "main") and len(rel) == 1:
            rel = []
        elif rel[-1] == "mod":
            rel = rel[:-1]
        if rel and rel[0] == "bin":
            continue
        mods[tuple(rel)] = path
    return mods


REF = re.compile(r"\b(crate|super)((?:::\w+)+)")


def resolve(mods, here, kind, segments):
    if kind == "crate":
        base = []
    else:
        base = list(here[:-1])
        while segments and segments[0] == "super":
            base = base[:-1]
            segments = segments[1:]
    path = tuple(base + segments)
    while path and path not in mods:
        path = path[:-1]
    return path


def cycles():
    found = []
    for crate, src in CRATES.items():
        mods = module_paths(src)
        edges = {}
        for here, path in mods.items():
            lines = without_test_modules(open(path, encoding="utf-8").read().split("\n"))
            # Paths in code only: a doc link is not a dependency.
            text = "\n".join(strip_strings_and_comments(l) for l in lines)
            for m in REF.finditer(text):
                segs = [s for s in m.group(2).split("::") if s]
                there = resolve(mods, here, m.group(1), segs)
                # Compare as siblings under their lowest common ancestor.
                k = 0
                while k < min(len(here), len(there)) and here[k] == there[k]:
                    k += 1
                if k == len(here) or k == len(there):
                    continue  # one contains the other
                a, b = here[: k + 1], there[: k + 1]
                edges.setdefault(a, set()).add(b)
        found.extend((crate, c) for c in find_cycles(edges))
    return found


def find_cycles(edges):
    out, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                out.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return out


def dependency_count():
    tree = subprocess.run(
        ["cargo", "tree", "-p", "ferry-unpack", "--edges", "normal", "--prefix", "none"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return len(set(l for l in tree.split("\n") if l.strip()))


def main():
    failed = False
    if "--no-deps" not in sys.argv:
        readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
        m = FIGURE.search(readme)
        if not m:
            print("README.md does not record the ferry-unpack dependency figure")
            failed = True
        else:
            limit, count = int(m.group(1)), dependency_count()
            print(f"ferry-unpack dependency tree: {count} entries (README records {limit})")
            if count > limit:
                print(f"FAIL: the unpacker's dependency tree grew past {limit}; remove what was "
                      "added, or justify it and raise the figure in README.md")
                failed = True
    longs = long_functions()
    for length, path, line, name in longs:
        print(f"FAIL: {path}:{line} fn {name} is {length} lines (at most {MAX_FUNCTION_LINES}): break it into named phases")
    failed |= bool(longs)
    for crate, c in cycles():
        print(f"FAIL: import cycle in {crate}: {' -> '.join('::'.join(m) or 'crate' for m in c)}")
        failed = True
    if not failed:
        print(f"structure: no function over {MAX_FUNCTION_LINES} lines, no import cycle")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
