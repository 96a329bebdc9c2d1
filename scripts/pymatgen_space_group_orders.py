#!/usr/bin/env python3
"""Writes data/tables/pymatgen_space_group_orders.txt: the order in which pymatgen 2022.11.7's CifParser lists a
space group's operations for a CIF that names its group but lists no operations (io/cif.py, get_symops), as the
order each table *inserts* them; data/space_groups.cpp replays the rest.

usage: /usr/bin/python3 scripts/pymatgen_space_group_orders.py > data/tables/pymatgen_space_group_orders.txt

How CifParser gets the operations (pymatgen 2022.11.7):
  - each H-M or Hall tag's value, spaces and '_' removed (case kept), in the tag order CifParser tries: one of the 241
    symbols of symm_data.json's space_group_encoding -> SpaceGroup(symbol).symmetry_ops, a *set* of SymmOp built from
    either the first entry of symm_ops.json (COD's table) whose hermann_mauguin or universal_h_m (spaces removed) is
    the symbol (after SpaceGroup's abbreviated/full symbol mapping), in COD's listed order, or, where none is (the 89
    symbols with '_': 'P2_1/c' maps to 'P12_1/c1', not COD's 'P121/c1'), the closure of the symbol's generators
    (SpaceGroup._generate_full_symmetry_ops); else the first COD entry whose hermann_mauguin (whitespace removed) is
    the value -> a *list*, in COD's order;
  - else the number: SpaceGroup.from_int_number(n).symmetry_ops (a set, as above).
SymmOp.__hash__ is the constant 7, so a set's iteration order is fixed by its insertion order and size alone (no
PYTHONHASHSEED dependence: int hashes are not randomised); data/space_groups.cpp replays CPython's set insertion.

Lines (operations as indices, two hex digits each, into the setting's operations sorted as data/space_groups.cpp
sorts them: rotation rows, then translations in 24ths in [0, 24)):
  order ID HALL IDX...        an insertion order of spglib setting HALL's operations (HALL 0: no spglib setting has
                              these operations; no IDX)
  name KEY ID set|list        what CifParser makes of a tag value whose spaces and '_' removed are KEY
  number N ID                 SpaceGroup.from_int_number(N) (set)
  setting HALL ID             SpaceGroup(universal symbol) of the first COD entry with HALL's operations (set): the
                              order used where CifParser reads another setting than ours (or none)
"""
import os
import re
import sys
import warnings

import numpy as np
import pymatgen.core
import pymatgen.symmetry
import spglib
from monty.serialization import loadfn
from pymatgen.core.operations import SymmOp
from pymatgen.io.cif import space_groups, sub_spgrp
from pymatgen.symmetry.groups import SpaceGroup, sg_symbol_from_int_number

warnings.filterwarnings("ignore")
COD = loadfn(os.path.join(os.path.dirname(pymatgen.symmetry.__file__), "symm_ops.json"))


def key24(rot, trans):
    """An operation as data/hall_symbol.h's Op24: integer rotation rows, translation in 24ths in [0, 24)."""
    r = tuple(tuple(int(round(v)) for v in row) for row in np.asarray(rot))
    t = tuple(int(round(v * 24)) % 24 for v in np.asarray(trans))
    return r, t


def spglib_settings():
    """{frozenset of Op24 keys: (hall number, sorted keys)}, the first Hall number for each set of operations."""
    out = {}
    for h in range(1, 531):
        db = spglib.get_symmetry_from_database(h)
        ops = sorted({key24(r, t) for r, t in zip(db["rotations"], db["translations"])})
        out.setdefault(frozenset(ops), (h, ops))
    return out


def spacegroup_insertion(symbol):
    """The operations SpaceGroup(symbol) inserts into its set, in insertion order (see the module docstring)."""
    s = re.sub(r" ", "", symbol)
    s = SpaceGroup.abbrev_sg_mapping.get(s, SpaceGroup.full_sg_mapping.get(s, s))
    for spg in SpaceGroup.SYMM_OPS:  # hermann_mauguin / universal_h_m: SpaceGroup removed their spaces
        if s in (spg["hermann_mauguin"], spg["universal_h_m"]):
            return [SymmOp.from_xyz_string(x) for x in spg["symops"]]
    return [SymmOp(m) for m in SpaceGroup(symbol)._generate_full_symmetry_ops()]


def cpython_set_order(n, h=7):
    """Insertion indices in the order CPython 3.11 iterates a set of n unequal keys all hashing to h."""
    table, mask, fill = [None] * 8, 7, 0

    def place(table, mask, k):
        i, perturb = h & mask, h
        while True:
            for j in range(10 if i + 9 <= mask else 1):
                if table[i + j] is None:
                    table[i + j] = k
                    return
            perturb >>= 5
            i = (i * 5 + 1 + perturb) & mask

    for k in range(n):
        place(table, mask, k)
        fill += 1
        if fill * 5 >= mask * 3:
            size = 8
            while size <= fill * 4:
                size <<= 1
            old, mask, table = table, size - 1, [None] * size
            for x in old:
                if x is not None:
                    place(table, mask, x)
    return [x for x in table if x is not None]


def main():
    if pymatgen.core.__version__ != "2022.11.7":
        sys.exit(f"pymatgen {pymatgen.core.__version__}: the table is pymatgen 2022.11.7's (the reference code's); run "
                 "this with that version (Debian 12's python3-pymatgen)")
    settings = spglib_settings()
    orders, order_ids, lines = [], {}, []

    def order_id(ops):
        keys = [key24(o.rotation_matrix, o.translation_vector) for o in ops]
        hall, sorted_keys = settings.get(frozenset(keys), (0, None))
        if len(set(keys)) != len(keys):
            sys.exit(f"operations listed twice: {keys}")
        idx = tuple(sorted_keys.index(k) for k in keys) if hall else ()
        if (hall, idx) not in order_ids:
            order_ids[(hall, idx)] = len(orders)
            orders.append((hall, idx))
        return order_ids[(hall, idx)]

    checked = 0
    for key, symbol in space_groups.items():
        ins = spacegroup_insertion(symbol)
        # The replay must give SpaceGroup's own iteration order.
        got = [key24(o.rotation_matrix, o.translation_vector) for o in SpaceGroup(symbol).symmetry_ops]
        want = [key24(ins[i].rotation_matrix, ins[i].translation_vector) for i in cpython_set_order(len(ins))]
        if got != want:
            sys.exit(f"the set replay disagrees with SpaceGroup('{symbol}').symmetry_ops")
        checked += 1
        lines.append(f"name {key} {order_id(ins)} set")
    for d in COD:
        key = re.sub(r"\s+", "", d["hermann_mauguin"])
        if key in space_groups or any(l.split()[1] == key for l in lines):
            continue  # CifParser takes the symbol table's, or COD's first entry with this symbol
        lines.append(f"name {key} {order_id([SymmOp.from_xyz_string(x) for x in d['symops']])} list")
    for n in range(1, 231):
        lines.append(f"number {n} {order_id(spacegroup_insertion(sg_symbol_from_int_number(n)))}")
    defaults = {}
    for d in COD:
        ops = [SymmOp.from_xyz_string(x) for x in d["symops"]]
        hall = settings.get(frozenset(key24(o.rotation_matrix, o.translation_vector) for o in ops), (0,))[0]
        if hall and hall not in defaults:
            universal = re.sub(r" ", "", d["universal_h_m"])
            defaults[hall] = order_id(spacegroup_insertion(universal))
    lines += [f"setting {h} {defaults[h]}" for h in sorted(defaults)]
    print(f"# The order pymatgen {pymatgen.core.__version__}'s CifParser inserts a named space group's operations "
          "(Debian python3-pymatgen: io/cif.py get_symops,")
    print("# symmetry/groups.py SpaceGroup, symm_ops.json, symm_data.json), against spglib "
          f"{spglib.__version__}'s settings. Written by")
    print("# scripts/pymatgen_space_group_orders.py, whose docstring describes the lines; do not edit. "
          f"Replay checked for {checked} symbols.")
    for i, (hall, idx) in enumerate(orders):
        print(f"order {i} {hall} " + "".join(f"{k:02x}" for k in idx))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
