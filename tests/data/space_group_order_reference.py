#!/usr/bin/env python3
"""The order of a named space group's symmetry images (CIFs that list no operations) against pymatgen's CifParser.

usage: space_group_order_reference.py CIF_DUMP                   compare every name below with cif_dump
       space_group_order_reference.py --fixture OUT.txt          write the fixture test_pymatgen_order.cpp reads

Each case is a CIF listing no operations, three sites (Cu at a general position, N on x,x,x, O at the origin: the
last two special positions in many groups, where images merge and the first copy stays) on a cell the setting's
rotations keep, and the space group by one of:
  - each of pymatgen's 241 symbols as its table spells them ('P2_1/c', 'Fm-3m', 'R-3mH'), which CifParser reads
    through SpaceGroup(symbol).symmetry_ops: a set (COD's or the generators' operations, in CPython's set order);
  - each symbol only COD's table (symm_ops.json) has, written as COD does ('P 1 21/n 1', 'C c m b'): COD's list
    (those of settings our tables lack, such as 'C 1' or 'P 4/m c c (a+b,-a+b+1/2,c)', left out: we refuse them);
  - each number 1..230 alone (SpaceGroup.from_int_number).
  - settings CifParser cannot read by name, which we read (a qualifier: 'F d -3 m :2', 'R -3 m :R'; a Hall symbol):
    compared with SpaceGroup(COD's universal symbol).symmetry_ops expanded as CifParser expands operations, the order
    we give them (docs/formats.md).
pymatgen reads each with CifParser(...).get_structures(primitive=False); cases where it reads another setting than
ours (other positions: 'R -3 m :R' by number, a setting our tables lack) or none are counted, not compared. Ours must
give the same sites in the same order (element and position within 1e-6 each, modulo 1).
The fixture holds a spread of the cases (every path, every crystal family, centred and not, alternative settings)
with pymatgen's sites, for CI, which has no pymatgen. Exit status: 77 when pymatgen is missing or not 2022.11.7
(whose order this is), 1 on any disagreement, else 0.
"""
import os
import re
import subprocess
import sys
import tempfile
import warnings

try:
    import numpy as np
    import pymatgen.core
    import pymatgen.symmetry
    from monty.serialization import loadfn
    from pymatgen.core.operations import SymmOp
    from pymatgen.io.cif import CifParser, space_groups
    from pymatgen.symmetry.groups import SpaceGroup
    import spglib
except ImportError as e:  # pragma: no cover
    print(f"skipped: /usr/bin/python3 cannot import pymatgen ({e})")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from space_group_reference import cell_for  # noqa: E402: the cell a setting's rotations keep

if pymatgen.core.__version__ != "2022.11.7":  # the reference code's; later SymmOp/SpaceGroup order otherwise
    print(f"skipped: the order under test is pymatgen 2022.11.7's, this is {pymatgen.core.__version__}")
    sys.exit(77)
warnings.filterwarnings("ignore")
cif_parser = getattr(CifParser, "from_str", None) or CifParser.from_string
COD = loadfn(os.path.join(os.path.dirname(pymatgen.symmetry.__file__), "symm_ops.json"))
SITES = [("Cu", (0.1234, 0.2345, 0.3456)), ("N", (0.1234, 0.1234, 0.1234)), ("O", (0.0, 0.0, 0.0))]
H_M = "_symmetry_space_group_name_H-M"
NUMBER = "_symmetry_Int_Tables_number"
# The fixture's spread: symbols (pymatgen's spelling: set of COD's or the generators' operations), COD-only symbols
# (list), numbers (set), and H-M + number together.
FIXTURE_SYMBOLS = ["P-1", "P2_1/c", "C2/m", "C2/c", "P2_12_121", "Pna2_1", "Pnma", "Cmcm", "Fddd", "Immm", "I4/mmm",
                   "I4_1/amd", "P4/nmm", "P4_2/mnm", "R-3m", "R3c", "R-3mH", "P-3m1", "P6_3/mmc", "P6_3mc", "P-6m2",
                   "Pm-3m", "Fm-3m", "Ia-3d", "P2_13", "Pa-3", "I-43d"]
FIXTURE_COD = ["P 1 21/n 1", "P 1 21/a 1", "I 1 2/a 1", "P 1 1 21/b", "P b n m", "P m c n", "C c m b", "A b m a",
               "P c a b", "P n c b", "I b m m", "P 42/n m c", "I 41/a"]
FIXTURE_QUALIFIED = ["F d -3 m :2", "R -3 m :R", "P n n n :2", "P 4/n m m :2", "R 3 :R", "I 41/a m d :2"]
FIXTURE_HALL = [("-F 4vw 2vw 3", "Fd-3m:2"), ("-P 2ybc", "P121/c1"), ("-R 3 2\"", "R-3m:H")]
HALL = "_space_group_name_Hall"
FIXTURE_NUMBERS = [2, 12, 14, 15, 62, 63, 64, 70, 139, 141, 148, 166, 167, 187, 191, 194, 205, 221, 227]


def cif(tags, cell):
    lines = ["data_x"] + [f"{t}   '{v}'" for t, v in tags]
    lines += [f"_cell_{t}   {v}" for t, v in zip(("length_a", "length_b", "length_c", "angle_alpha", "angle_beta",
                                                    "angle_gamma"), cell)]
    lines += ["loop_", " _atom_site_type_symbol", " _atom_site_label", " _atom_site_fract_x", " _atom_site_fract_y",
              " _atom_site_fract_z"]
    lines += [f"  {el}  {el}{k}  {x}  {y}  {z}" for k, (el, (x, y, z)) in enumerate(SITES)]
    return "\n".join(lines) + "\n"


def pymatgen_sites(text):
    s = cif_parser(text).get_structures(primitive=False)[0]
    return [(site.specie.symbol, tuple(float(x) for x in site.frac_coords)) for site in s]


def table_sites(symbol):
    """SITES expanded by SpaceGroup(symbol).symmetry_ops as CifParser._unique_coords expands them (the sites listed
    in the order CifParser's sorts keep: Cu, N, O)."""
    coords, out = [], []
    for el, p in SITES:
        for op in SpaceGroup(symbol).symmetry_ops:
            c = np.array([v - np.floor(v) for v in op.operate(p)])
            if not any(same_position(c, q, 1e-4) for q in coords):
                coords.append(c)
                out.append((el, tuple(float(v) for v in c)))
    return out


def same_position(p, q, tol=1e-6):
    d = np.array(p) - np.array(q)
    return bool(np.all(np.abs(d - np.round(d)) < tol))


def same_sites(a, b, ordered):
    if len(a) != len(b):
        return False
    if ordered:
        return all(ea == eb and same_position(pa, pb) for (ea, pa), (eb, pb) in zip(a, b))
    rest = list(b)
    for e, p in a:
        k = next((k for k, (f, q) in enumerate(rest) if f == e and same_position(p, q, 1e-4)), None)
        if k is None:
            return False
        del rest[k]
    return True


def ops_of_symbol(symbol):
    return list(SpaceGroup(symbol).symmetry_ops)


def op_set(ops):
    return frozenset((tuple(np.round(o.rotation_matrix).astype(int).flatten()),
                      tuple(np.round(np.mod(o.translation_vector, 1) * 24).astype(int) % 24)) for o in ops)


def spglib_settings():
    """The operations of spglib's 530 settings (our tables'), as sets."""
    out = set()
    for h in range(1, 531):
        db = spglib.get_symmetry_from_database(h)
        out.add(op_set(SymmOp.from_rotation_and_translation(r, t) for r, t in zip(db["rotations"], db["translations"])))
    return out


def cases():
    """(what, tags, cell) for every name CifParser reads, and which of them the fixture holds."""
    out, ours = [], spglib_settings()
    for symbol in space_groups.values():
        fixture = symbol in FIXTURE_SYMBOLS
        out.append((f"pymatgen symbol '{symbol}'", [(H_M, symbol)], cell_for(ops_of_symbol(symbol)), fixture,
                    None))
    seen = set(space_groups)
    for d in COD:
        key = re.sub(r"\s+", "", d["hermann_mauguin"])
        if key in seen:
            continue
        seen.add(key)
        ops = [SymmOp.from_xyz_string(x) for x in d["symops"]]
        if op_set(ops) not in ours:
            continue  # a setting our tables lack ('C 1', 'P 4/m c c (a+b,-a+b+1/2,c)'): refused, as documented
        out.append((f"COD symbol '{d['hermann_mauguin']}'", [(H_M, d["hermann_mauguin"])], cell_for(ops),
                    d["hermann_mauguin"] in FIXTURE_COD, None))
    for n in range(1, 231):
        ops = list(SpaceGroup.from_int_number(n).symmetry_ops)
        out.append((f"number {n}", [(NUMBER, n)], cell_for(ops), n in FIXTURE_NUMBERS, None))
    # Settings CifParser cannot read by name (a qualifier: 'F d -3 m :2', 'R -3 m :R'; a Hall symbol): pymatgen's
    # own order for them, SpaceGroup(COD's universal symbol).symmetry_ops, expanded as CifParser expands operations.
    for d in COD:
        ops = [SymmOp.from_xyz_string(x) for x in d["symops"]]
        if ":" in d["universal_h_m"] and op_set(ops) in ours:
            universal = d["universal_h_m"]
            out.append((f"qualified symbol '{universal}'", [(H_M, universal)], cell_for(ops),
                        universal in FIXTURE_QUALIFIED, universal))
    for hall, universal in FIXTURE_HALL:
        ops = ops_of_symbol(universal)
        out.append((f"Hall symbol '{hall}'", [(HALL, hall)], cell_for(ops), True, universal))
    # H-M and number together: the symbol decides (pymatgen tries it first).
    for symbol, n in (("P2_1/c", 14), ("R-3m", 166), ("P4_2/mnm", 136)):
        out.append((f"'{symbol}' + number {n}", [(H_M, symbol), (NUMBER, n)], cell_for(ops_of_symbol(symbol)), True,
                    None))
    return [c for c in out if c[2] is not None]


def write_case(f, title, tags, cell, ref):
    """One fixture case as test_pymatgen_order.cpp reads it: its tags, cell, the listed sites, pymatgen's sites."""
    f.write(f"\ncase {title}\n")
    for t, v in tags:
        f.write(f"tag {t} {v}\n")
    f.write("cell " + " ".join(str(v) for v in cell) + "\n")
    for el, (x, y, z) in SITES:
        f.write(f"site {el} {x} {y} {z}\n")
    f.write("expect" + "".join(f" {e} {x:.6f} {y:.6f} {z:.6f}" for e, (x, y, z) in ref) + "\n")


def write_fixture(path, chosen):
    assert all(len(r) for _, _, _, r in chosen)
    with open(path, "w") as f:
        f.write(f"# pymatgen {pymatgen.core.__version__}'s CifParser(cif).get_structures(primitive=False)[0] "
                "for CIFs that "
                "name their space group and list no operations:\n# 'tag TAG VALUE' lines, 'cell' (a b c alpha beta "
                "gamma), the listed 'site's, then 'expect' pymatgen's sites in its order (element x y z ...).\n"
                "# Written by tests/data/space_group_order_reference.py --fixture; read by test_pymatgen_order.cpp.\n")
        for what, tags, cell, ref in chosen:
            write_case(f, what, tags, cell, ref)


def main():
    if len(sys.argv) != 2 and not (len(sys.argv) == 3 and sys.argv[1] == "--fixture"):
        sys.exit(__doc__)
    all_cases = cases()
    refs = [table_sites(table) if table else pymatgen_sites(cif(tags, cell)) for _, tags, cell, _, table in all_cases]
    if sys.argv[1] == "--fixture":
        write_fixture(sys.argv[2], [(w, t, c, r) for (w, t, c, fx, _), r in zip(all_cases, refs) if fx])
        print(f"{sum(1 for c in all_cases if c[3])} cases written to {sys.argv[2]}")
        return
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k, (_, tags, cell, _, _) in enumerate(all_cases):
            paths.append(os.path.join(folder, f"{k:05d}.cif"))
            with open(paths[-1], "w") as f:
                f.write(cif(tags, cell))
        lines = []
        for k in range(0, len(paths), 1000):
            lines += subprocess.run([sys.argv[1]] + paths[k:k + 1000], check=True, capture_output=True,
                                    text=True).stdout.splitlines()
    bad = other = refused = 0
    for (what, _, cell, _, _), ref, line in zip(all_cases, refs, lines):
        if line.startswith("error"):
            refused += 1
            print(f"REFUSED {what}: {line}")
            continue
        toks = line.split()[7:]
        mine = [(toks[k], tuple(float(t) for t in toks[k + 1:k + 4])) for k in range(0, len(toks), 4)]
        # cif_dump gives the file's order; the sites are listed Cu, N, O, which pymatgen's sort keeps.
        if not same_sites(mine, ref, ordered=False):
            other += 1  # pymatgen reads another setting (or none)
            print(f"OTHERWISE {what}: pymatgen's {len(ref)} sites are not ours ({len(mine)})")
            continue
        if not same_sites(mine, ref, ordered=True):
            bad += 1
            print(f"ORDER {what} (cell {cell}): ours {[p for _, p in mine][:4]}... "
                  f"pymatgen {[p for _, p in ref][:4]}...")
    print(f"{len(all_cases)} names; pymatgen reads otherwise: {other}; refused by ours: {refused}; "
          f"other order: {bad}")
    sys.exit(1 if bad or refused else 0)


if __name__ == "__main__":
    main()
