#!/usr/bin/env python3
"""Cross-check of data/space_groups.cpp (space groups by name, for CIFs listing no operations) against two tables
that are not spglib's: COD's list of symmetry operations by setting (pymatgen's symm_ops.json, 750 settings with
their Hermann-Mauguin symbol, 'universal' symbol with qualifier, and Hall symbol) and pymatgen's own space-group
tables (SpaceGroup(symbol), SpaceGroup.from_int_number).

usage: space_group_reference.py CIF_DUMP

Each setting becomes a CIF with one atom at a general position, a cell whose metric the setting's rotations keep, and
only the space group's name (or Hall symbol, or number); the orbit CIF_DUMP reads must be the table's operations
applied to the atom. Expectations:
  - COD's 'universal' symbol ("P n c b :2", "R -3 m :H"): every setting without a basis change or origin shift is
    read (COD's 'C 2 e b' and 'B b e b' too, which spglib spells 'C 2 c e' and 'B b c b').
  - COD's plain H-M symbol: read as the universal symbol, except that a symbol without qualifier whose group has
    two origins reads as origin choice 1 (COD's list gives origin 2 for a few non-standard settings).
  - COD's 752 Hall symbols (some spelled otherwise than spglib's list, e.g. 'A 2 -2b' for 'A 2 -2c'; origin shifts
    written '(0 0 4)' or '(x,y,z+1/4)', changes of basis '(1/2*x,y,-1/2*x+z)' and '(-x+z-1/4,x+1/4,y+1/4)', for
    which COD's operations are the only table); spglib's 530 Hall symbols (against spglib's own operations), and
    some of them with an origin shift of their own ('-P 2ybc (1 2 3)', in no table: the shifted operations
    (R | t + v - R v)).
  - pymatgen: every symbol of its table and every number 1..230 as pymatgen reads them, except "Ccca", which
    pymatgen reads as origin choice 2 though it reads number 68 as origin choice 1 (we read both as choice 1).
Exit status: 77 when pymatgen is missing, 1 on any disagreement, else 0.
"""
import os
import subprocess
import sys
import tempfile
import warnings

try:
    import numpy as np
    from pymatgen.core.operations import SymmOp
    from pymatgen.symmetry.groups import SYMM_DATA, SpaceGroup
    import pymatgen.symmetry
    import spglib
    from monty.serialization import loadfn
except ImportError as e:  # pragma: no cover
    print(f"skipped: /usr/bin/python3 cannot import pymatgen ({e})")
    sys.exit(77)

warnings.filterwarnings("ignore")
# COD's setting table, as pymatgen's CIF reader uses it (pymatgen < 2024 also has it as io.cif._get_cod_data()).
COD_TABLE = os.path.join(os.path.dirname(pymatgen.symmetry.__file__), "symm_ops.json")
xyz_op = getattr(SymmOp, "from_xyz_str", None) or SymmOp.from_xyz_string  # renamed in pymatgen 2024
POINT = np.array([0.1234, 0.2345, 0.3456])  # a general position: no operation maps it onto itself
# Cells from the lowest metric symmetry up: the first that every rotation of a setting keeps is its cell.
CELLS = [(5.1, 6.2, 7.3, 80, 85, 95),
         (5.1, 6.2, 7.3, 80, 90, 90), (5.1, 6.2, 7.3, 90, 80, 90), (5.1, 6.2, 7.3, 90, 90, 80),
         (5.1, 6.2, 7.3, 90, 90, 90),
         (5.1, 5.1, 7.3, 90, 90, 90), (7.3, 5.1, 5.1, 90, 90, 90), (5.1, 7.3, 5.1, 90, 90, 90),
         (5.1, 5.1, 7.3, 90, 90, 120), (5.1, 5.1, 5.1, 75, 75, 75), (5.1, 5.1, 5.1, 90, 90, 90)]


def metric(cell):
    a, b, c, al, be, ga = cell
    ca, cb, cg = (np.cos(np.radians(x)) for x in (al, be, ga))
    return np.array([[a * a, a * b * cg, a * c * cb], [a * b * cg, b * b, b * c * ca], [a * c * cb, b * c * ca, c * c]])


def cell_for(ops):
    for cell in CELLS:
        g = metric(cell)
        if all(np.allclose(o.rotation_matrix.T @ g @ o.rotation_matrix, g, atol=1e-6) for o in ops):
            return cell
    return None


def orbit(ops):
    pts = []
    for o in ops:
        p = np.mod(o.rotation_matrix @ POINT + o.translation_vector, 1.0)
        if not any(same(p, q) for q in pts):
            pts.append(p)
    return pts


def centring(ops):
    """The pure translations of a setting (its centring vectors), as a set."""
    return {tuple(np.round(np.mod(o.translation_vector, 1.0) * 12).astype(int) % 12) for o in ops
            if np.array_equal(o.rotation_matrix, np.eye(3))}


def same(p, q):
    d = p - q
    return np.all(np.abs(d - np.round(d)) < 1e-6)


def cif(cell, tag, value):
    lines = ["data_x", f"{tag}   '{value}'"]
    lines += [f"_cell_{t}   {v}" for t, v in zip(("length_a", "length_b", "length_c", "angle_alpha", "angle_beta",
                                                    "angle_gamma"), cell)]
    lines += ["loop_", " _atom_site_label", " _atom_site_fract_x", " _atom_site_fract_y", " _atom_site_fract_z",
              "  Cu1  " + "  ".join(f"{x:.4f}" for x in POINT)]
    return "\n".join(lines) + "\n"


def read_orbit(line):
    """Our orbit from a cif_dump line, or the error."""
    if line.startswith("error"):
        return line
    toks = line.split()[7:]
    return [np.array([float(t) for t in toks[k + 1:k + 4]]) for k in range(0, len(toks), 4)]


def same_orbit(mine, ref):
    return not isinstance(mine, str) and len(mine) == len(ref) and all(any(same(p, q) for q in ref) for p in mine)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    every_cod = loadfn(COD_TABLE)
    cod = [d for d in every_cod if "(" not in d["universal_h_m"] + d["hall"]]  # no basis change or origin shift
    ops_of = {d["universal_h_m"]: [xyz_op(s) for s in d["symops"]] for d in cod}
    cases = []  # (what, tag, value, cell, [acceptable ops] or the refusal expected)
    for d in cod:
        ops = ops_of[d["universal_h_m"]]
        cell = cell_for(ops)
        universal, plain = d["universal_h_m"], d["hermann_mauguin"]
        cases.append((f"COD universal '{universal}'", "_space_group_name_H-M_alt", universal, cell, [ops]))
        expect = [ops]
        if universal.strip().endswith(":2"):  # unqualified: origin choice 1 of the same centring and axes
            expect = [ops_of[e["universal_h_m"]] for e in cod
                      if e["number"] == d["number"] and e["universal_h_m"].strip().endswith(":1") and
                      centring(ops_of[e["universal_h_m"]]) == centring(ops)]
        cases.append((f"COD plain '{plain}'", "_symmetry_space_group_name_H-M", plain, cell, expect))
    # Every COD Hall symbol, with its origin shift ("(0 0 1)", "(x,y,z+1/4)") or change of basis
    # ("(1/2*x,y,-1/2*x+z)"), on a cell its operations keep.
    for d in every_cod:
        hall = d["hall"].strip()
        ops = [xyz_op(s) for s in d["symops"]]
        if hall:
            cases.append((f"COD Hall '{hall}'", "_space_group_name_Hall", hall, cell_for(ops), [ops]))
    for h in range(1, 531):
        hall = spglib.get_spacegroup_type(h)["hall_symbol"]
        db = spglib.get_symmetry_from_database(h)
        ops = [SymmOp.from_rotation_and_translation(r, t) for r, t in zip(db["rotations"], db["translations"])]
        cases.append((f"spglib Hall '{hall}'", "_space_group_name_Hall", hall, cell_for(ops), [ops]))
        if h % 7 == 0 and "(" not in hall:  # an origin shift of its own, v = (1, 2, 3) / 12
            v = np.array([1, 2, 3]) / 12
            shifted = [SymmOp.from_rotation_and_translation(o.rotation_matrix,
                                                            o.translation_vector + v - o.rotation_matrix @ v)
                       for o in ops]
            cases.append((f"shifted Hall '{hall} (1 2 3)'", "_space_group_name_Hall", hall + " (1 2 3)",
                          cell_for(ops), [shifted]))
    for symbol in SYMM_DATA["space_group_encoding"]:
        ops = list(SpaceGroup(symbol).symmetry_ops)
        if symbol == "Ccca":
            ops = list(SpaceGroup.from_int_number(68).symmetry_ops)
        cases.append((f"pymatgen '{symbol}'", "_symmetry_space_group_name_H-M", symbol, cell_for(ops), [ops]))
    for number in range(1, 231):
        ops = list(SpaceGroup.from_int_number(number).symmetry_ops)
        cases.append((f"pymatgen number {number}", "_symmetry_Int_Tables_number", str(number), cell_for(ops), [ops]))

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k, (_, tag, value, cell, _) in enumerate(cases):
            paths.append(os.path.join(folder, f"{k:05d}.cif"))
            with open(paths[-1], "w") as f:
                f.write(cif(cell, tag, value))
        lines = []
        for k in range(0, len(paths), 1000):
            lines += subprocess.run([sys.argv[1]] + paths[k:k + 1000], check=True, capture_output=True,
                                    text=True).stdout.splitlines()
    bad = 0
    for (what, _, _, cell, expect), line in zip(cases, lines):
        mine = read_orbit(line)
        if isinstance(expect, str):
            if isinstance(mine, str) and expect in mine:
                continue
            expect = []
        elif any(same_orbit(mine, orbit(ops)) for ops in expect):
            continue
        bad += 1
        print(f"DISAGREE {what} (cell {cell}): " +
              (mine if isinstance(mine, str) else f"{len(mine)} positions, not the table's "
               f"{len(orbit(expect[0])) if expect else 'refusal'}"))
    print(f"{len(cases)} names ({len(cod)} COD settings x universal/plain, {len(every_cod)} COD Hall symbols, "
          f"{len(SYMM_DATA['space_group_encoding'])}"
          f" pymatgen symbols, 230 numbers, 530 spglib Hall symbols and {sum(1 for c in cases if c[0][0] == 's' and 'shifted' in c[0])}"
          f" shifted); disagreements: {bad}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
