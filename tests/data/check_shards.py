"""Reads cgprep's shards with h5py + numpy only (the documented layout, docs/formats.md "HDF5 shards") and checks
them: offsets, BOS/EOS framing, prompt lengths, attributes. Exit 77 (ctest: skipped) when h5py is unavailable."""
import json
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    sys.exit(77)

shards_dir = sys.argv[1]
for split in ("train", "val", "test"):
    f = h5py.File(f"{shards_dir}/{split}-00000.h5", "r")
    tok, off, plen = f["tokens"][:], f["offsets"][:], f["prompt_lens"][:]
    tasks, rows, copies = f["tasks"][:], f["rows"][:], f["copies"][:]
    n = len(plen)
    assert tok.dtype == np.int32 and off.dtype == np.int64, (tok.dtype, off.dtype)
    assert n == f.attrs["samples"] > 0 and len(off) == n + 1 and off[0] == 0 and off[-1] == len(tok)
    assert len(tasks) == len(rows) == len(copies) == n
    assert np.all(np.diff(off) > 0)
    bos, eos = int(f.attrs["bos_id"]), int(f.attrs["eos_id"])
    assert np.all(tok[off[:-1]] == bos) and np.all(tok[off[1:] - 1] == eos)
    assert np.all((plen >= 1) & (plen < np.diff(off)))
    assert set(np.unique(tasks)) <= {0, 1}
    assert np.all((tok >= 0) & (tok < f.attrs["vocab_size"]))
    settings = json.loads(f.attrs["settings"])
    skipped = json.loads(f.attrs["skipped"])
    assert f.attrs["split"] == split and len(f.attrs["tokenizer_sha256"]) == 64
    assert f.attrs["rows_read"] == f.attrs["rows_used"] + f.attrs["rows_skipped"]
    assert len(skipped) == f.attrs["rows_skipped"], (len(skipped), f.attrs["rows_skipped"])
    assert settings["text"]["angle_mode"] in ("round", "truncate")
    print(f"{split}: {n} samples, {len(tok)} tokens, {len(skipped)} skipped rows: ok")
