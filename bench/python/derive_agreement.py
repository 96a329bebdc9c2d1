#!/usr/bin/env python3
"""How often the formula and space group cgprep derives (data/mp20.h derive_properties) equal pymatgen's for the same
CIF: CifParser(cif).get_structures()[0], its .composition.reduced_formula and
SpacegroupAnalyzer(s, symprec=0.1, angle_tolerance=5).get_space_group_number().

usage: derive_agreement.py CIF_DUMP [--p1 N] [--sym N] [--oxi N] [--mp20 SPLIT.csv.gz] [--rows N] [--seed S] [--strict]

  --p1 N     N random P1 CIFs holding He, Ne or Ar among 2-4 elements, sites in a random order (1 in 8 with 64-100
             sites, where CPython's sort merges runs): pymatgen sorts the sites before it builds the composition, and
             a noble gas's NaN electronegativity makes that order decide the formula's spelling
  --sym N    N CIFs with symmetry operations (a primitive space group's, a cubic cell), noble gases among their
             elements, the asymmetric unit in a random order: the order CifParser gives sites it expands
  --oxi N    N crystals with oxidation states: a --sym crystal written in P1, each site typed as one of two oxidation
             states of its element ('Fe2+', 'Fe3+'; per site, or per orbit in half of them) with pymatgen's
             _atom_type_oxidation_number loop in 3 of 4 (CifParser then reads Species, and SpacegroupAnalyzer tells
             Fe2+ from Fe3+: a lower group), without it in the rest (elements: the group of the --sym crystal)
  --mp20 F   every crystal of an MP-20 split (its own CIF strings, P1), formula and space group; --rows N: the first N;
             also how often ours and pymatgen's equal the split's own pretty_formula and spacegroup.number (MP's)
CIF_DUMP is tests/data/cif_dump (built with the tests). pymatgen reads the CIFs as the reference does, primitive=True;
where ours differs the line also says what pymatgen gives with primitive=False (the cell as written, sites sorted),
which is what cgprep follows: it does not look for a smaller cell (get_primitive_structure, 0.25 A), whose sites
pymatgen puts in symbol order. --strict: exit 1 on any disagreement with primitive=False. Exit 77 without pymatgen.
Runs pymatgen on all cores (both readings of 9,047 MP-20 val crystals: ~10 min on 2 busy cores).
"""
import argparse
import csv
import gzip
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import warnings

try:
    from pymatgen.io.cif import CifParser
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from pymatgen.symmetry.groups import SpaceGroup
except ImportError as e:  # pragma: no cover
    print(f"skipped: /usr/bin/python3 cannot import pymatgen ({e})")
    sys.exit(77)

cif_parser = getattr(CifParser, "from_str", None) or CifParser.from_string
NOBLE = ["He", "Ne", "Ar"]
OTHERS = ["H", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "Fe",
          "Cu", "Zn", "Br", "Kr", "Sr", "Zr", "Ag", "I", "Xe", "Cs", "Ba", "La", "Pt", "Au", "Pb", "Bi"]
# Primitive groups whose operations keep a cubic cell's metric (signed permutations).
SYM_GROUPS = ["P-1", "P2_1/c", "P2/m", "Pmmm", "Pbca", "Pnma", "P4/mmm", "P4_2/mnm", "P-42_1m", "Pm-3m", "Pa-3",
              "P2_13", "P-43m"]


def cif_text(name, abc, angles, ops, sites, oxidation=None):
    """A CIF of `sites` ((type symbol, frac)); `oxidation`: {type symbol: number} as an _atom_type loop."""
    a, b, c = abc
    al, be, ga = angles
    out = [f"data_{name}", "_symmetry_space_group_name_H-M   'P 1'" if len(ops) == 1 else "",
           f"_cell_length_a   {a:.8f}", f"_cell_length_b   {b:.8f}", f"_cell_length_c   {c:.8f}",
           f"_cell_angle_alpha   {al:.8f}", f"_cell_angle_beta   {be:.8f}", f"_cell_angle_gamma   {ga:.8f}",
           "loop_", " _symmetry_equiv_pos_site_id", " _symmetry_equiv_pos_as_xyz"]
    out += [f"  {i + 1}  '{op}'" for i, op in enumerate(ops)]
    if oxidation:
        out += ["loop_", " _atom_type_symbol", " _atom_type_oxidation_number"]
        out += [f"  {t}  {v}" for t, v in oxidation.items()]
    out += ["loop_", " _atom_site_type_symbol", " _atom_site_label", " _atom_site_fract_x", " _atom_site_fract_y",
            " _atom_site_fract_z", " _atom_site_occupancy"]
    out += [f"  {el}  {el}{i}  {x:.8f}  {y:.8f}  {z:.8f}  1" for i, (el, (x, y, z)) in enumerate(sites)]
    return "\n".join(line for line in out if line) + "\n"


def random_elements(rng):
    els = rng.sample(NOBLE, rng.randint(1, 2))
    return els + rng.sample(OTHERS, rng.randint(1, 4 - len(els)))


def random_p1(rng, i):
    els = random_elements(rng)
    big = rng.random() < 1 / 8
    sites = [rng.choice(els) for _ in range(rng.randint(64, 100) if big else rng.randint(len(els), 16))]
    sites += [e for e in els if e not in sites]
    rng.shuffle(sites)
    n = len(sites)
    length = (n * 12.0) ** (1 / 3)  # ~12 A^3 a site
    abc = [length * rng.uniform(0.8, 1.25) for _ in range(3)]
    angles = [rng.uniform(75, 105) for _ in range(3)]
    return cif_text(f"p1_{i}", abc, angles, ["x, y, z"], [(e, [rng.random() for _ in range(3)]) for e in sites])


def random_sym(rng, i):
    group = SpaceGroup(rng.choice(SYM_GROUPS))
    ops = [op.as_xyz_string() for op in group.symmetry_ops]
    els = random_elements(rng)
    sites = [rng.choice(els) for _ in range(rng.randint(len(els), 5))]
    sites += [e for e in els if e not in sites]
    rng.shuffle(sites)
    length = (len(sites) * len(ops) * 15.0) ** (1 / 3)
    return cif_text(f"sym_{i}", [length] * 3, [90.0] * 3, ops, [(e, [rng.random() for _ in range(3)]) for e in sites])


def random_oxi(rng, i):
    s = cif_parser(random_sym(rng, i)).get_structures(primitive=False, symmetrized=True)[0]
    charges = [0] * len(s)
    for orbit in s.equivalent_indices:  # the listed site's images: one charge each, or one for all in half the CIFs
        orbit_charge = rng.choice([2, 3])
        for k in orbit:
            charges[k] = orbit_charge if i % 2 else rng.choice([2, 3])
    sites = [(f"{site.specie.symbol}{q}+", site.frac_coords) for site, q in zip(s, charges)]
    types = {t: int(t[-2]) for t, _ in sites}
    return cif_text(f"oxi_{i}", s.lattice.abc, s.lattice.angles, ["x, y, z"], sites,
                    types if rng.random() < 0.75 else None)


def pymatgen_answer(text):
    """(formula, space group) as pymatgen gives them, with primitive=True (the reference) and primitive=False."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for primitive in (True, False):
            try:
                s = cif_parser(text).get_structures(primitive=primitive)[0]
            except Exception as e:  # noqa: BLE001: an unreadable CIF is a disagreement, not a crash
                out.append((f"error:{type(e).__name__}", -1))
                continue
            try:
                sg = SpacegroupAnalyzer(s, symprec=0.1, angle_tolerance=5).get_space_group_number()
            except TypeError:  # spglib found no symmetry (overlapping atoms): ours says 0
                sg = 0
            out.append((s.composition.reduced_formula, sg))
    return out


def ours(dump, args):
    res = subprocess.run([dump, "--derive"] + args, capture_output=True, text=True, check=True)
    rows = []
    for line in res.stdout.splitlines():
        parts = line.split()
        rows.append((parts[1], int(parts[2])) if parts[0] == "ok" else ("error", -1))
    return rows


def compare(title, names, texts, mine, pool, what, strict_fail, columns=None):
    refs = pool.map(pymatgen_answer, texts, chunksize=16)
    assert len(refs) == len(mine), (len(refs), len(mine))
    if columns:  # the split's own pretty_formula and spacegroup.number (Materials Project's)
        for k, label in enumerate(what):
            col = [c[k] for c in columns]
            n = len(col)
            print(f"{title}: {label} = the split's own column: ours {sum(m[k] == c for m, c in zip(mine, col))}, "
                  f"pymatgen {sum(r[0][k] == c for r, c in zip(refs, col))}, "
                  f"pymatgen primitive=False {sum(r[1][k] == c for r, c in zip(refs, col))} of {n}")
    for k, label in enumerate(what):
        agree = sum(r[0][k] == m[k] for r, m in zip(refs, mine))
        conv = sum(r[1][k] == m[k] for r, m in zip(refs, mine))
        print(f"{title}: {label}: {agree} of {len(mine)} = pymatgen's ({100 * agree / len(mine):.2f}%); "
              f"with primitive=False {conv} ({100 * conv / len(mine):.2f}%)")
        shown = 0
        for name, r, m in zip(names, refs, mine):
            if r[0][k] != m[k] and shown < 8:
                shown += 1
                print(f"  {name}: ours {m[k]}, pymatgen {r[0][k]} (primitive=False: {r[1][k]})")
            strict_fail[0] |= r[1][k] != m[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--p1", type=int, default=0)
    ap.add_argument("--sym", type=int, default=0)
    ap.add_argument("--oxi", type=int, default=0)
    ap.add_argument("--mp20")
    ap.add_argument("--rows", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    fail = [False]
    with multiprocessing.Pool() as pool, tempfile.TemporaryDirectory() as tmp:
        for kind, n, make in (("p1", a.p1, random_p1), ("sym", a.sym, random_sym), ("oxi", a.oxi, random_oxi)):
            if n <= 0:
                continue
            texts = [make(rng, i) for i in range(n)]
            paths = []
            for i, t in enumerate(texts):
                paths.append(os.path.join(tmp, f"{kind}_{i}.cif"))
                with open(paths[-1], "w") as f:
                    f.write(t)
            mine = ours(a.dump, paths)
            what = f"{kind} CIFs with He/Ne/Ar" + (" and oxidation states" if kind == "oxi" else "")
            compare(what, [os.path.basename(p) for p in paths], texts, mine, pool, ["formula", "space group"], fail)
        if a.mp20:
            with gzip.open(a.mp20, "rt") as f:
                rows = list(csv.DictReader(f))
            if a.rows > 0:
                rows = rows[:a.rows]
            path = os.path.join(tmp, "split.csv")
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["material_id", "cif"], extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
            mine = ours(a.dump, ["--csv", path])
            columns = None
            if all(r.get("pretty_formula") and r.get("spacegroup.number") for r in rows):
                columns = [(r["pretty_formula"], int(float(r["spacegroup.number"]))) for r in rows]
            compare(f"MP-20 {os.path.basename(a.mp20)}", [r["material_id"] for r in rows], [r["cif"] for r in rows],
                    mine, pool, ["formula", "space group"], fail, columns)
    sys.exit(1 if a.strict and fail[0] else 0)


if __name__ == "__main__":
    main()
