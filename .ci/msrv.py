#!/usr/bin/env python3
"""Checks the minimum supported Rust version (MSRV) against the locked
dependency graph: every package that `cargo metadata` resolves for this
host (libraries, build and dev dependencies) must declare a `rust-version`
no newer than the workspace's, and every publishable member must declare
it.

Reads `cargo metadata --format-version 1 --locked --filter-platform HOST`
on standard input. The standard library side is checked by clippy's
`incompatible_msrv` lint, which reads the same `rust-version`.
"""

import json
import sys


def version(text):
    """`1.88` and `1.88.0` alike, as (1, 88, 0)."""
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.load(sys.stdin)
    packages = {p["id"]: p for p in meta["packages"]}
    members = [packages[i] for i in meta["workspace_members"]]
    declared = {p["rust_version"] for p in members if p.get("rust_version")}
    if len(declared) != 1:
        sys.exit(f"msrv: the workspace members declare {sorted(declared) or 'no'} rust-version; expected one")
    msrv = declared.pop()
    problems = []
    for p in members:
        if p.get("publish") != [] and not p.get("rust_version"):
            problems.append(f"{p['name']} is publishable but declares no rust-version")
    checked = 0
    for node in meta["resolve"]["nodes"]:
        p = packages[node["id"]]
        checked += 1
        needs = p.get("rust_version")
        if needs and version(needs) > version(msrv):
            problems.append(f"{p['name']} {p['version']} needs Rust {needs}")
    if problems:
        print(f"msrv: the workspace declares rust-version {msrv}, but:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        sys.exit(1)
    print(f"msrv: {checked} locked packages build with Rust {msrv} or older")


main()
