#!/usr/bin/env python3
"""Edits the same corpus locations as gitops-flow with ruamel.yaml's round-trip
mode (the usual format-preserving tool) and reports fidelity and time per edit.
Fidelity: the output is byte-identical to the exact edit (the original with only
the value's bytes replaced), which gitops-flow's own tests verify.
Usage: ruamel_compare.py <cases.json>"""
import io
import json
import re
import sys
import time

from ruamel.yaml import YAML

cases = json.load(open(sys.argv[1]))
yaml = YAML(typ="rt")
yaml.preserve_quotes = True
yaml.width = 4096


def steps(path):
    out = []
    for part in path.split("."):
        m = re.match(r"^([^\[]*)((?:\[\d+\])*)$", part)
        if m.group(1):
            out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return out


same = 0
errors = 0
total = 0.0
for c in cases:
    raw = open(c["file"], "rb").read()
    text = raw.decode("utf-8")
    t = time.perf_counter()
    try:
        doc = yaml.load(text)
        node = doc
        st = steps(c["path"])
        for s in st[:-1]:
            node = node[s]
        old = node[st[-1]]
        new = c["version"]
        # Keep ruamel's own quoting object type when the old value was a quoted string.
        node[st[-1]] = type(old)(new) if isinstance(old, str) else new
        buf = io.StringIO()
        yaml.dump(doc, buf)
        out = buf.getvalue()
    except Exception:
        errors += 1
        out = None
    total += time.perf_counter() - t
    if out == c["expected"]:
        same += 1

n = len(cases)
print(f"ruamel.yaml: {n} edits, {same} byte-identical to the exact edit ({100.0 * same / max(n, 1):.1f} %), {errors} errors, {total * 1e6 / max(n, 1):.1f} µs per edit")
print(f"RUAMEL_US_PER_EDIT={total * 1e6 / max(n, 1):.1f}")
