#!/usr/bin/env python3
"""Reference for sampler/smact.cpp: CDVAE's scripts/eval_utils.py::smact_validity with SMACT 2.x's
neutral_ratios and pauling_test (eneg_states_test) written out literally, reading the same data/tables/ files.

stdin: lines "El:count El:count ... | verdict" (elements in atomic-number order, reduced counts, verdict 0/1),
as written by the test that calls this script. Exit status 1 and a list of disagreements when any verdict differs.
"""
import itertools
import math
import os
import sys

TABLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "tables")


def rows(name):
    with open(os.path.join(TABLES, name)) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                yield line.split()


OX = {r[0]: [int(x) for x in r[1:]] for r in rows("smact_oxidation_states.txt")}
ENEG = {r[0]: (None if r[2] == "None" else float(r[2])) for r in rows("pauling_electronegativity.txt")}
METALS = {s for r in rows("smact_metals.txt") for s in r}


def _gcd_recursive(*args):
    if len(args) == 2:
        return math.gcd(*args)
    return math.gcd(args[0], _gcd_recursive(*args[1:]))


def neutral_ratios(oxidations, stoichs):
    allowed = [x for x in itertools.product(*stoichs)
               if sum(o * s for o, s in zip(oxidations, x)) == 0 and _gcd_recursive(*x) == 1]
    return len(allowed) > 0, allowed


def eneg_states_test(ox_states, enegs):  # SMACT 2.x, verbatim logic
    for ((ox1, eneg1), (ox2, eneg2)) in itertools.combinations(zip(ox_states, enegs), 2):
        if (ox1 > 0) and (ox2 < 0) and (eneg1 >= eneg2):
            return False
        elif (ox1 < 0) and (ox2 > 0) and (eneg1 <= eneg2):
            return False
        elif eneg1 is None or eneg2 is None:
            return False
    return True


def smact_validity(elem_symbols, count, use_pauling_test=True, include_alloys=True):
    for e in elem_symbols:
        if e not in ENEG:
            return False  # smact.Element raises NameError: no element data
    electronegs = [ENEG[e] for e in elem_symbols]
    ox_combos = [OX[e] for e in elem_symbols]
    if len(set(elem_symbols)) == 1:
        return True
    if include_alloys and all(e in METALS for e in elem_symbols):
        return True
    compositions = []
    for ox_states in itertools.product(*ox_combos):
        stoichs = [(c,) for c in count]
        cn_e, cn_r = neutral_ratios(ox_states, stoichs=stoichs)
        if cn_e:
            if use_pauling_test:
                try:
                    electroneg_OK = eneg_states_test(ox_states, electronegs)
                except TypeError:
                    electroneg_OK = True
            else:
                electroneg_OK = True
            if electroneg_OK:
                for ratio in cn_r:
                    compositions.append((tuple(elem_symbols), ox_states, ratio))
    return len(compositions) > 0


def main():
    bad = 0
    n = 0
    for line in sys.stdin:
        comp, verdict = line.rsplit("|", 1)
        pairs = [p.split(":") for p in comp.split()]
        els, counts = [p[0] for p in pairs], [int(p[1]) for p in pairs]
        want = smact_validity(els, counts)
        n += 1
        if want != bool(int(verdict)):
            bad += 1
            if bad <= 20:
                print(f"disagree: {comp.strip()}: reference {want}, C++ {bool(int(verdict))}")
    print(f"{n} compositions checked, {bad} disagreements")
    sys.exit(1 if bad or n == 0 else 0)


if __name__ == "__main__":
    main()
