#!/usr/bin/env python3
"""Builds `unidecode.bin` from gosimple/unidecode v1.0.1's `table.txt`
(https://github.com/gosimple/unidecode, Apache-2.0, (c) 2014 Rainy Cape S.L.;
its data is Text::Unidecode's). Argo CD's `branch_slug` runs every non-ASCII
character through that table (gosimple/slug v1.15.0 -> unidecode.Unidecode).

Only what can survive into a slug is kept: each transliteration is lower-cased,
every character outside `[a-z0-9_-]` becomes `-` and runs of `-` collapse. The
slug pipeline does exactly that to the whole string after transliterating, and
those steps commute with concatenation, so the reduced table gives the same
slugs. Format: for U+0080..U+FFFF in order, one length byte and that many ASCII
bytes (length 0: the character is dropped).

Usage: make_table.py <table.txt> <unidecode.bin>"""
import ast
import re
import sys

table = {}
for line in open(sys.argv[1], encoding="utf-8").read().split("\n"):
    if not line or line.startswith("/*"):
        continue
    key, value = line.split(": ", 1)
    table[int(key, 16)] = ast.literal_eval(value)

out = bytearray()
for cp in range(0x80, 0x10000):
    s = table.get(cp, "").lower()
    s = re.sub("[^a-z0-9_-]", "-", s)
    s = re.sub("-+", "-", s)
    assert len(s) < 256 and s.isascii()
    out.append(len(s))
    out += s.encode("ascii")
open(sys.argv[2], "wb").write(bytes(out))
