#!/usr/bin/env python3
"""Why pymatgen's default CIF reading (CifParser.get_structures(), primitive=True) gives another space group than the
cell as written (primitive=False, what cgprep and the reference's Structure.from_str read) for some MP-20 crystals.

usage: /usr/bin/python3 bench/python/primitive_space_group.py SPLIT.csv.gz [FIRST LAST]   (rows FIRST..LAST-1)

For each crystal whose SpacegroupAnalyzer(symprec=0.1) group differs between the two readings, one line: sites as
written and reduced, how far the pseudo-translation get_primitive_structure (0.25 Å per component) took as a lattice
vector moves the farthest site from the nearest site of its element, spglib's group for the cell as written at 0.1,
0.2 and 0.25 Å, the reduced cell's, MP's column, and whether get_primitive_structure at 0.1 Å reduces it too.
get_primitive_structure *averages* the positions of the sites it merges, so the reduced cell can be more symmetric
than any tolerance makes the cell as written (docs/formats.md, derived properties).
"""
import csv
import gzip
import sys
import warnings

import numpy as np
from pymatgen.io.cif import CifParser
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

warnings.filterwarnings("ignore")


def farthest_move(full, prim):
    """The largest distance from a site moved by a pseudo-translation to the nearest site of its element."""
    worst = 0.0
    for v in prim.lattice.matrix:
        t = full.lattice.get_fractional_coords(v)
        if np.allclose(t, np.round(t), atol=1e-6):
            continue  # a lattice vector of the cell as written
        for site in full:
            worst = max(worst, min(full.lattice.get_distance_and_image(site.frac_coords + t, other.frac_coords)[0]
                                   for other in full if other.specie == site.specie))
    return worst


def main():
    if len(sys.argv) not in (2, 4):
        sys.exit(__doc__)
    with gzip.open(sys.argv[1], "rt") as f:
        rows = list(csv.DictReader(f))
    if len(sys.argv) == 4:
        rows = rows[int(sys.argv[2]):int(sys.argv[3])]
    differ = 0
    for r in rows:
        full = CifParser.from_string(r["cif"]).get_structures(primitive=False)[0]
        prim = CifParser.from_string(r["cif"]).get_structures(primitive=True)[0]
        written = SpacegroupAnalyzer(full, symprec=0.1).get_space_group_number()
        reduced = SpacegroupAnalyzer(prim, symprec=0.1).get_space_group_number()
        if written == reduced:
            continue
        differ += 1
        loose = {p: SpacegroupAnalyzer(full, symprec=p).get_space_group_number() for p in (0.1, 0.2, 0.25)}
        print(f"{r['material_id']}: {len(full)} -> {len(prim)} sites, farthest move {farthest_move(full, prim):.3f} Å; "
              f"as written at 0.1/0.2/0.25 Å: {loose[0.1]}/{loose[0.2]}/{loose[0.25]}, reduced: {reduced}, "
              f"MP: {r.get('spacegroup.number')}, reduced at 0.1 Å too: "
              f"{len(full.get_primitive_structure(tolerance=0.1)) < len(full)}", flush=True)
    print(f"{differ} of {len(rows)} crystals get another space group from the reduced cell")


if __name__ == "__main__":
    main()
