#!/usr/bin/env python3
"""Cross-check of data/cif.cpp against pymatgen's CifParser (get_structures(primitive=False)).

usage: cif_reference.py CIF_DUMP TEST_CSV_GZ [N_CRYSTALS]

The first N MP-20 test crystals (default 600) are written by pymatgen's CifWriter in four ways, and every file is
read by both pymatgen and CIF_DUMP:
  p1      CifWriter(s): every site, P1 (the layout of MP-20's own CIFs)
  sym     CifWriter(s, symprec=0.1): the refined conventional cell as space group operations + asymmetric unit
  layout  `sym` rewritten in other legal CIF 1.1 layouts: every value on the line after its tag, the space group name
          in a ';' text field, operations double-quoted two to a line, atom rows wrapped one value a line with
          comment lines between, no occupancy column for half the crystals
  ddl2    `sym` with DDL2 tags (_space_group_symop_operation_xyz, _space_group_name_H-M_alt) and no
          _atom_site_type_symbol column (elements from the labels, "Ga0" -> Ga)
  named   `sym` without its operations: the space group by H-M symbol and number only (data/space_groups.h)
  number  `sym` without operations or symbol: the number (_space_group_IT_number) only
  hall    `sym` without operations, symbol or number: spglib's Hall symbol (_space_group_name_Hall) only (left out
          for the few crystals spglib finds no symmetry for in the written cell)
  rhombo  (rhombohedral groups only) the primitive rhombohedral cell, one site per orbit, H-M symbol and number: the
          tables' rhombohedral-axes setting, chosen by the cell
pymatgen's reading of `layout` and `ddl2` must equal its reading of `sym` (the rewrites are faithful); the CIFs
without operations are compared with pymatgen's reading of `sym` (`rhombo`: of the primitive cell written as P1),
not with pymatgen's own tables, which are the thing under test; positions there within 1.5e-4 (images within the
1e-4 site tolerance may be kept from another operation), and crystals whose `named` CIF pymatgen itself reads
otherwise than `sym` (a symmetrized CIF whose operations are not its setting's; 12 of the 9,046) are left out. Ours must give the same lattice parameters (1e-9)
and the same sites: per element, a one-to-one pairing of positions equal modulo lattice vectors within 1e-7. Exit status: 77 when pymatgen is missing, 1 on any disagreement, else 0.
"""
import csv
import gzip
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import warnings

try:
    import numpy as np
    from pymatgen.io.cif import CifParser, CifWriter
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
except ImportError as e:  # pragma: no cover
    print(f"skipped: /usr/bin/python3 cannot import pymatgen ({e})")
    sys.exit(77)

warnings.filterwarnings("ignore")
# pymatgen >= 2024 renamed from_string to from_str (and removed the old name in 2025).
cif_parser = getattr(CifParser, "from_str", None) or CifParser.from_string
VARIANTS = ["p1", "sym", "layout", "ddl2", "named", "number", "hall", "rhombo"]
# What each variant must equal: its own pymatgen reading, or that of another variant.
REFERENCE = {"named": "sym", "number": "sym", "hall": "sym", "rhombo": "rhombo_p1"}
RHOMBOHEDRAL_GROUPS = {146, 148, 155, 160, 161, 166, 167}
SITE_TOL = 1.5e-4  # images closer than pymatgen's 1e-4 site tolerance are one site


def parse(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cif_parser(text).get_structures(primitive=False)[0]


def relayout(text, rng, drop_occupancy):
    """The same CIF in other legal CIF 1.1 layouts (see the module docstring)."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("_symmetry_space_group_name_H-M"):
            out += ["_symmetry_space_group_name_H-M", ";", line.split(None, 1)[1], ";"]
        elif line.startswith("_"):
            tag, value = line.split(None, 1)
            out += [tag, "    " + value, "# a comment between items"]
        elif line == "loop_" and lines[i + 1].strip() == "_symmetry_equiv_pos_site_id":
            out += ["loop_", " _symmetry_equiv_pos_site_id", " _symmetry_equiv_pos_as_xyz"]
            i += 3
            rows = []
            while i < len(lines) and lines[i].startswith("  "):
                num, op = lines[i].split(None, 1)
                rows.append(f'{num} "{op.strip(chr(39))}"')
                i += 1
            out += ["  " + "   ".join(rows[k:k + 2]) for k in range(0, len(rows), 2)]
            continue
        elif line == "loop_" and lines[i + 1].strip() == "_atom_site_type_symbol":
            i += 1
            names = []
            while i < len(lines) and lines[i].startswith(" _"):
                names.append(lines[i].strip())
                i += 1
            keep = [k for k, n in enumerate(names) if not (drop_occupancy and n == "_atom_site_occupancy")]
            out += ["loop_"] + [" " + names[k] for k in keep]
            while i < len(lines) and lines[i].startswith("  "):
                values = lines[i].split()
                for k in keep:
                    out.append(" " * rng.randint(0, 6) + values[k])
                if rng.random() < 0.5:
                    out.append("# a comment inside the loop")
                i += 1
            continue
        else:
            out.append(line)
        i += 1
    return "\n".join(out) + "\n"


def ddl2(text):
    text = text.replace("_symmetry_equiv_pos_site_id", "_space_group_symop_id")
    text = text.replace("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")
    text = text.replace("_symmetry_space_group_name_H-M", "_space_group_name_H-M_alt")
    text = text.replace("_symmetry_Int_Tables_number", "_space_group_IT_number")
    lines = text.splitlines()
    start = lines.index(" _atom_site_type_symbol")
    del lines[start]
    k = start
    while k < len(lines) and lines[k].startswith(" _"):
        k += 1
    for j in range(k, len(lines)):
        if lines[j].startswith("  "):
            lines[j] = "  " + lines[j].split(None, 1)[1]
    return "\n".join(lines) + "\n"


def without_operations(text, keep_symbol, keep_number, hall=None):
    """`text` (CifWriter output) without its symmetry operation loop; symbol and number kept as asked."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line == "loop_" and lines[i + 1].strip() == "_symmetry_equiv_pos_site_id":
            i += 3
            while i < len(lines) and lines[i].startswith("  "):
                i += 1
            continue
        if line.startswith("_symmetry_space_group_name_H-M"):
            if keep_symbol:
                out.append(line)
            if hall:
                out.append(f"_space_group_name_Hall   '{hall}'")
        elif line.startswith("_symmetry_Int_Tables_number"):
            if keep_number:
                out.append(line.replace("_symmetry_Int_Tables_number", "_space_group_IT_number"))
        else:
            out.append(line)
        i += 1
    return "\n".join(out) + "\n"


def rhombohedral_cif(s):
    """The primitive rhombohedral cell of `s` (an R group) as one site per orbit + symbol and number, and as P1."""
    prim = SpacegroupAnalyzer(s, symprec=0.1).get_primitive_standard_structure()
    sga = SpacegroupAnalyzer(prim, symprec=0.01)
    lines = ["data_rhombohedral", f"_symmetry_space_group_name_H-M   '{sga.get_space_group_symbol()}'",
             f"_symmetry_Int_Tables_number   {sga.get_space_group_number()}"]
    for tag, value in zip(("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"),
                          list(prim.lattice.abc) + list(prim.lattice.angles)):
        lines.append(f"_cell_{tag}   {value:.8f}")  # as CifWriter writes the P1 reference
    lines += ["loop_", " _atom_site_label", " _atom_site_fract_x", " _atom_site_fract_y", " _atom_site_fract_z"]
    for k, sites in enumerate(sga.get_symmetrized_structure().equivalent_sites):
        x, y, z = sites[0].frac_coords
        lines.append(f"  {sites[0].specie.symbol}{k}  {x:.10f}  {y:.10f}  {z:.10f}")
    return "\n".join(lines) + "\n", str(CifWriter(prim))


def write_variants(args):
    """Writes the four CIFs of one crystal and returns pymatgen's reading of each (or an error)."""
    index, cif, folder = args
    rng = random.Random(index)
    s = parse(cif)
    texts = {"p1": str(CifWriter(s)), "sym": str(CifWriter(s, symprec=0.1))}
    texts["layout"] = relayout(texts["sym"], rng, drop_occupancy=index % 2 == 1)
    texts["ddl2"] = ddl2(texts["sym"])
    texts["named"] = without_operations(texts["sym"], keep_symbol=True, keep_number=True)
    texts["number"] = without_operations(texts["sym"], keep_symbol=False, keep_number=True)
    for symprec in (0.01, 0.1):  # spglib finds none at 0.01 for a few written cells
        data = SpacegroupAnalyzer(parse(texts["sym"]), symprec=symprec).get_symmetry_dataset()
        if data:
            texts["hall"] = without_operations(texts["sym"], keep_symbol=False, keep_number=False,
                                               hall=data["hall"])
            break
    if SpacegroupAnalyzer(s, symprec=0.1).get_space_group_number() in RHOMBOHEDRAL_GROUPS:
        texts["rhombo"], texts["rhombo_p1"] = rhombohedral_cif(s)
    result = {}
    for v, text in texts.items():
        path = os.path.join(folder, f"{index:05d}_{v}.cif")
        with open(path, "w") as f:
            f.write(text)
        result[v] = (path,) + reading(parse(texts[REFERENCE.get(v, v)]))
    # A symmetrized CIF whose operations are not its setting's (CifWriter(symprec=0.1) on a crystal far from its
    # symmetry writes some: pymatgen reads its own `named` CIF otherwise than `sym`) is no reference for the variants
    # without operations; they are left out (`inconsistent`).
    if agree(dump_line(parse(texts["named"])), result["sym"], tol=SITE_TOL):
        for v in ("named", "number", "hall"):
            result.pop(v, None)
        result["inconsistent"] = True
    return result


def reading(structure):
    """(lattice parameters, [(element, frac coords)]) of a pymatgen Structure, as Python floats (whose repr is the
    shortest round trip, where NumPy 2 writes np.float64(...))."""
    return ([float(v) for v in list(structure.lattice.abc) + list(structure.lattice.angles)],
            [(site.specie.symbol, tuple(float(x) for x in site.frac_coords)) for site in structure])


def dump_line(structure):
    """A pymatgen Structure as cif_dump prints a crystal."""
    params, sites = reading(structure)
    return "ok " + " ".join(map(repr, params)) + "".join(f" {e} {x!r} {y!r} {z!r}" for e, (x, y, z) in sites)


def agree(mine, ref, tol=1e-7):
    """'' when our reading equals pymatgen's (positions within tol), else why not."""
    if mine.startswith("error"):
        return mine
    toks = mine.split()[1:]
    params = [float(t) for t in toks[:6]]
    if not np.allclose(params, ref[1], rtol=0, atol=1e-9):
        return f"lattice {params} vs pymatgen {ref[1]}"
    sites = [(toks[k], np.array([float(t) for t in toks[k + 1:k + 4]])) for k in range(6, len(toks), 4)]
    if len(sites) != len(ref[2]):
        return f"{len(sites)} sites vs pymatgen's {len(ref[2])}"
    unused = list(ref[2])
    for el, f in sites:
        for k, (rel, rf) in enumerate(unused):
            d = f - np.array(rf)
            if rel == el and np.all(np.abs(d - np.round(d)) < tol):
                del unused[k]
                break
        else:
            return f"our site {el} {f} is not among pymatgen's"
    return ""


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    dump, test_csv = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 600
    with gzip.open(test_csv, "rt", newline="") as f:
        cifs = [row["cif"] for _, row in zip(range(n), csv.DictReader(f))]
    t0 = time.time()
    with tempfile.TemporaryDirectory() as folder, multiprocessing.Pool(max(1, min(4, os.cpu_count() or 1))) as pool:
        refs = pool.map(write_variants, [(i, cif, folder) for i, cif in enumerate(cifs)], chunksize=8)
        t_ref = time.time() - t0
        bad = 0
        for v in ("layout", "ddl2"):  # the rewrites are faithful: pymatgen reads them as `sym`
            for i, r in enumerate(refs):
                if agree("ok " + " ".join(map(str, r[v][1])) + "".join(
                        f" {e} {x!r} {y!r} {z!r}" for e, (x, y, z) in r[v][2]), r["sym"]):
                    print(f"BAD REWRITE {v} of crystal {i}: pymatgen reads it differently from `sym`")
                    bad += 1
        t1 = time.time()
        jobs = [(i, v) for i, r in enumerate(refs) for v in VARIANTS if v in r]
        inconsistent = sum(1 for r in refs if "inconsistent" in r)
        paths = [refs[i][v][0] for i, v in jobs]
        mine = []
        for k in range(0, len(paths), 1000):
            mine += subprocess.run([dump] + paths[k:k + 1000], check=True, capture_output=True,
                                   text=True).stdout.splitlines()
        t_ours = time.time() - t1
        sites = {v: 0 for v in VARIANTS}
        ops = 0
        for (i, v), line in zip(jobs, mine):
            # With the tables' operations, in another order than the CIF's, an image that two operations put within
            # the 1e-4 site tolerance of each other may be kept from the other operation.
            why = agree(line, refs[i][v], tol=SITE_TOL if v in REFERENCE else 1e-7)
            sites[v] += len(refs[i][v][2])
            if why:
                bad += 1
                print(f"DISAGREE crystal {i} ({v}): {why}")
        for r in refs:
            with open(r["sym"][0]) as f:
                ops += len(re.findall(r"^\s+\d+\s+'", f.read(), flags=re.MULTILINE))
    print(f"{len(refs)} MP-20 test crystals x {len(VARIANTS)} layouts ({sum(1 for r in refs if 'rhombo' in r)} "
          f"rhombohedral); sites per layout: {sites}; "
          f"{ops / max(1, len(refs)):.1f} symmetry operations per symmetrized CIF on average")
    print(f"symmetrized CIFs pymatgen reads otherwise without operations (no reference for named/number/hall): "
          f"{inconsistent}")
    print(f"pymatgen writing + reading {t_ref:.1f} s, cif_dump {t_ours:.2f} s; disagreements: {bad}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
