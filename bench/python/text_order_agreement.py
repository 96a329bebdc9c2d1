#!/usr/bin/env python3
"""How often the crystal text cgprep writes equals the text the paper's reference code writes for the same CIF.

The reference (facebookresearch/crystal-text-llm, llama_finetune.py get_crystal_string) reads each CIF with
Structure.from_str(cif, fmt="cif") (CifParser, primitive=False) and writes the lattice lengths ("{:.1f}") and angles
(int()) of structure.lattice.parameters, then each site's species and frac_coords ("{:.2f}") in the structure's site
order; its random translation is left out here (it moves every site alike and does not reorder them). Ours is
`cif_dump --text` (read_mp20 with data.site_order=pymatgen, the default; data.angle_mode=truncate and no folding of
1.00, the reference's formatting), and with --file-order the text in the CIF's own order (data.site_order=file),
which is what cgprep wrote before: counted alongside, to show what the order changes.

usage: text_order_agreement.py CIF_DUMP [--p1 N] [--sym N] [--mp20-sym SPLIT.csv.gz N] [--mp20 SPLIT.csv.gz ...]
                               [--rows N] [--seed S] [--strict] [--changes SPLIT.csv.gz ...]

  --p1 N        N random P1 CIFs of 2-4 elements (He, Ne or Ar among them in one of four), sites listed in a random
                order (mixed elements, 1 in 8 with 64-100 sites)
  --sym N       N CIFs with a primitive space group's operations (cubic cell), 2-5 listed sites (Wyckoff orbits) of
                mixed elements in a random order: CifParser groups them by element and orders their images its way
  --mp20-sym F N  the first N crystals of an MP-20 split written by pymatgen's CifWriter(s, symprec=0.1): real
                symmetrized CIFs (asymmetric unit + operations, several Wyckoff sites); and the same without their
                operations, the space group by name and number only ("named": images in the order of pymatgen's
                tables, which cgprep replays: data/space_groups.h)
  --mp20 F ...  every crystal of these MP-20 splits (their own P1 CIFs); --rows N: the first N of each
  --changes F ...  ours only (no pymatgen): how many crystals of each split change text between the file's order and
                pymatgen's, with the first few named
Texts that differ in the lattice lines only are the last bit of an angle or length (docs/formats.md#crystal-text: the
reference's numpy may compute sin/cos otherwise); the sites are compared apart from them. --strict: exit 1 when any
text's sites differ from the reference's. Exit 77 without pymatgen. pymatgen runs on all cores
(~2 ms a crystal a core for MP-20's).
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
    from pymatgen.core.structure import Structure
    from pymatgen.io.cif import CifWriter
    from pymatgen.symmetry.groups import SpaceGroup
except ImportError as e:  # pragma: no cover
    print(f"skipped: /usr/bin/python3 cannot import pymatgen ({e})")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from derive_agreement import NOBLE, OTHERS, cif_text  # noqa: E402: the same random CIFs as derive_agreement's

# Primitive groups whose operations keep a cubic cell's metric (signed permutations).
SYM_GROUPS = ["P-1", "P2_1/c", "P2/m", "Pmmm", "Pbca", "Pnma", "P4/mmm", "P4_2/mnm", "P-42_1m", "Pm-3m", "Pa-3",
              "P2_13", "P-43m"]


def reference_text(cif):
    """get_crystal_string of the reference, without its random translation; "error:<kind>" where pymatgen fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = Structure.from_str(cif, fmt="cif")
        except Exception as e:  # noqa: BLE001: an unreadable CIF is a disagreement, not a crash
            return f"error:{type(e).__name__}"
    lengths = structure.lattice.parameters[:3]
    angles = structure.lattice.parameters[3:]
    return (" ".join(["{0:.1f}".format(x) for x in lengths]) + "\n" + " ".join([str(int(x)) for x in angles]) + "\n" +
            "\n".join([str(t) + "\n" + " ".join(["{0:.2f}".format(x) for x in c])
                       for t, c in zip(structure.species, structure.frac_coords)]))


def random_elements(rng):
    els = rng.sample(NOBLE, 1) if rng.random() < 0.25 else []
    return els + rng.sample(OTHERS, rng.randint(2, 4) - len(els))


def random_p1(rng, i):
    els = random_elements(rng)
    big = rng.random() < 1 / 8
    sites = [rng.choice(els) for _ in range(rng.randint(64, 100) if big else rng.randint(len(els), 16))]
    sites += [e for e in els if e not in sites]
    rng.shuffle(sites)
    length = (len(sites) * 12.0) ** (1 / 3)  # ~12 A^3 a site
    abc = [length * rng.uniform(0.8, 1.25) for _ in range(3)]
    angles = [rng.uniform(75, 105) for _ in range(3)]
    return cif_text(f"p1_{i}", abc, angles, ["x, y, z"], [(e, [rng.random() for _ in range(3)]) for e in sites])


def random_sym(rng, i):
    ops = [op.as_xyz_string() for op in SpaceGroup(rng.choice(SYM_GROUPS)).symmetry_ops]
    els = random_elements(rng)
    sites = [rng.choice(els) for _ in range(rng.randint(len(els), 5))]
    sites += [e for e in els if e not in sites]
    rng.shuffle(sites)
    length = (len(sites) * len(ops) * 15.0) ** (1 / 3)
    return cif_text(f"sym_{i}", [length] * 3, [90.0] * 3, ops, [(e, [rng.random() for _ in range(3)]) for e in sites])


def symmetrized(cif):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(CifWriter(Structure.from_str(cif, fmt="cif"), symprec=0.1))


def without_ops(cif):
    """The CIF without its symmetry operation loop: the space group by its H-M symbol and number only."""
    lines, out, i = cif.splitlines(), [], 0
    while i < len(lines):
        if lines[i] == "loop_" and i + 1 < len(lines) and lines[i + 1].strip() == "_symmetry_equiv_pos_site_id":
            i += 3
            while i < len(lines) and lines[i].startswith("  "):
                i += 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out) + "\n"


def ours(dump, args, file_order=False):
    """{id: text} and the error lines of `cif_dump --text`."""
    res = subprocess.run([dump, "--text"] + (["--file-order"] if file_order else []) + args, capture_output=True,
                         text=True, check=True)
    texts, errors = {}, []
    for line in res.stdout.splitlines():
        if line.startswith("ok "):
            _, name, text = line.split(" ", 2)
            texts[name] = text.replace(";", "\n")
        else:
            errors.append(line)
    return texts, errors


def sites(text):
    """The text's site lines (the lattice lines left out), or None."""
    return None if text is None else text.split("\n")[2:]


def compare(title, names, refs, mine, before, fail):
    n = len(names)
    agree = sum(mine.get(k) == r for k, r in zip(names, refs))
    agree_sites = sum(sites(mine.get(k)) == sites(r) for k, r in zip(names, refs))
    agree_before = sum(sites(before.get(k)) == sites(r) for k, r in zip(names, refs))
    unread = sum(k not in mine for k in names)
    print(f"{title}: {agree} of {n} texts = the reference's; their sites (species and coordinates, in order) "
          f"{agree_sites}; in the file's order (data.site_order=file, cgprep before) {agree_before}; unread by ours "
          f"{unread}")
    shown = 0
    for k, r in zip(names, refs):
        if sites(mine.get(k)) != sites(r):
            fail[0] = True
            if shown < 6:
                shown += 1
                print(f"  {k}:\n    ours      {(mine.get(k) or 'unread').replace(chr(10), ' / ')}\n"
                      f"    reference {r.replace(chr(10), ' / ')}")


def write(tmp, name, text):
    path = os.path.join(tmp, name + ".cif")
    with open(path, "w") as f:
        f.write(text)
    return path


def map_list(f, xs):
    return [f(x) for x in xs]


def read_split(path, rows):
    with gzip.open(path, "rt") as f:
        out = list(csv.DictReader(f))
    return out[:rows] if rows > 0 else out


def changes(dump, split):
    now, _ = ours(dump, ["--csv", split])
    before, _ = ours(dump, ["--csv", split], file_order=True)
    changed = [k for k in now if now[k] != before.get(k)]
    print(f"MP-20 {os.path.basename(split)}: {len(changed)} of {len(now)} crystals change text between the file's "
          f"site order and pymatgen's")
    for k in changed[:10]:
        print(f"  {k}:\n    pymatgen's {now[k].replace(chr(10), ' / ')}\n    file's     "
              f"{before[k].replace(chr(10), ' / ')}")
    return len(changed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--p1", type=int, default=0)
    ap.add_argument("--sym", type=int, default=0)
    ap.add_argument("--mp20-sym", nargs=2, metavar=("SPLIT", "N"))
    ap.add_argument("--mp20", nargs="*", default=[])
    ap.add_argument("--rows", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--changes", nargs="*", default=[])
    a = ap.parse_args()
    rng = random.Random(a.seed)
    fail = [False]
    for split in a.changes:
        changes(a.dump, split)
    with multiprocessing.Pool() as pool, tempfile.TemporaryDirectory() as tmp:
        sets = [("p1", "random P1 CIFs, elements mixed", [random_p1(rng, i) for i in range(a.p1)]),
                ("sym", "random CIFs with operations", [random_sym(rng, i) for i in range(a.sym)])]
        if a.mp20_sym:
            rows = read_split(a.mp20_sym[0], int(a.mp20_sym[1]))
            sym = pool.map(symmetrized, [r["cif"] for r in rows], chunksize=16)
            name = os.path.basename(a.mp20_sym[0])
            sets.append(("mp20sym", f"MP-20 {name} symmetrized by CifWriter(symprec=0.1)", sym))
            sets.append(("mp20named", f"MP-20 {name} symmetrized, space group by name only", map_list(without_ops, sym)))
        for kind, title, texts in sets:
            if not texts:
                continue
            names = [f"{kind}_{i}" for i in range(len(texts))]
            sub = os.path.join(tmp, kind)
            os.mkdir(sub)
            for name, t in zip(names, texts):
                write(sub, name, t)
            refs = pool.map(reference_text, texts, chunksize=16)
            mine, _ = ours(a.dump, [sub])
            before, _ = ours(a.dump, [sub], file_order=True)
            compare(title, names, refs, mine, before, fail)
        for split in a.mp20:
            rows = read_split(split, a.rows)
            path = os.path.join(tmp, "split.csv")
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["material_id", "cif"], extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
            refs = pool.map(reference_text, [r["cif"] for r in rows], chunksize=32)
            mine, _ = ours(a.dump, ["--csv", path])
            before, _ = ours(a.dump, ["--csv", path], file_order=True)
            compare(f"MP-20 {os.path.basename(split)} (its own CIFs)", [r["material_id"] for r in rows], refs, mine,
                    before, fail)
    sys.exit(1 if a.strict and fail[0] else 0)


if __name__ == "__main__":
    main()
