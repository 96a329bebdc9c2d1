#!/usr/bin/env python3
"""Compiles every translation unit with CG_HAVE_CUDA_KERNELS code against this libtorch's CUDA headers and CUDA's,
with the define on, and the CUDA sources with nvcc (sm_90) when CUDA has it: the code a GPU build compiles, checked
on a machine without a CUDA libtorch. Then a link check: every cg:: function those objects call must be defined by
one of them, the .cu objects or the CPU build's libraries (a kernel wrapper whose definition's signature drifted
from its declaration compiles, and fails only at a GPU build's link).

    scripts/check_cuda_guarded.py BUILD_DIR [CUDA_INCLUDE]     # CUDA_INCLUDE default /usr/local/cuda/include

Takes each such file's command from BUILD_DIR/compile_commands.json (a CPU build of this checkout; with
CG_UNITY_BUILD, the command of the batch holding it: what a GPU build compiles), replaces its output, and adds the
define. It keeps the precompiled header: that holds torch's headers only (common/torch_pch.h), which never read the
define (a header that did not fit would only be compiled again: -Winvalid-pch says so). A CPU-only libtorch lacks
c10/cuda/impl/cuda_cmake_macros.h (a CUDA build generates it); a stand-in that says the CUDA library is shared is put
in a temporary folder. Exits 1 when a file does not compile or a symbol is missing, 2 when this libtorch has no
c10/cuda headers or CUDA's headers are missing.
scripts/check_torch2.sh runs it against torch 2.x."""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile


CG_NAME = re.compile(r"^(?:\S+ )?cg::")  # "cg::f(int)", or a template's "void cg::f<float>(...)"


def symbols(paths, which):
    """Demangled names nm lists for these objects / archives: which is --undefined-only or --defined-only."""
    out = subprocess.run(["nm", "-C", which] + paths, capture_output=True, text=True, check=True).stdout
    # "ADDRESS TYPE NAME" when defined, "U NAME" when not; an archive's member headers have one field.
    fields = 3 if which == "--defined-only" else 2
    return {p[-1] for p in (line.split(maxsplit=fields - 1) for line in out.splitlines()) if len(p) == fields}


UNITY_INCLUDE = re.compile(r'^#include "([^"]+)"$', re.M)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def sources_of(path):
    """The sources a compile_commands entry compiles: a unity build's batch file (CG_UNITY_BUILD) lists its sources
    as #include lines."""
    if "/Unity/unity_" not in path:
        return [path]
    return UNITY_INCLUDE.findall(read(path))


def unresolved(objects, build):
    """The cg:: names the objects use that neither they nor the CPU build's libraries define."""
    libs = sorted(os.path.join(d, f) for d, _, files in os.walk(build) for f in files
                  if f.endswith(".a") and "CMakeFiles" not in d)
    defined = symbols(objects + libs, "--defined-only")
    return sorted(n for n in symbols(objects, "--undefined-only") if CG_NAME.match(n) and n not in defined)


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build = sys.argv[1]
    cuda_inc = sys.argv[2] if len(sys.argv) > 2 else "/usr/local/cuda/include"
    if not os.path.exists(os.path.join(cuda_inc, "cuda_runtime.h")):
        print(f"check_cuda_guarded: no cuda_runtime.h in {cuda_inc}", file=sys.stderr)
        return 2
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    todo = [e for e in entries if any("CG_HAVE_CUDA_KERNELS" in read(f) for f in sources_of(e["file"]))]
    if not todo:
        print("check_cuda_guarded: no translation unit mentions CG_HAVE_CUDA_KERNELS", file=sys.stderr)
        return 2
    first = shlex.split(todo[0]["command"]) if "command" in todo[0] else todo[0]["arguments"]
    dirs = ["/usr/include", "/usr/local/include"]
    for i, a in enumerate(first):
        for flag in ("-isystem", "-I"):
            if a == flag and i + 1 < len(first):
                dirs.append(first[i + 1])
            elif a.startswith(flag) and len(a) > len(flag):
                dirs.append(a[len(flag):])
    if not any(os.path.exists(os.path.join(d, "c10", "cuda", "CUDAGuard.h")) for d in dirs):
        print("check_cuda_guarded: this libtorch has no c10/cuda headers (torch 2.x's Debian package has them)",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as stand_in, tempfile.TemporaryDirectory() as objs:
        objects = []
        impl = os.path.join(stand_in, "c10", "cuda", "impl")
        os.makedirs(impl)
        with open(os.path.join(impl, "cuda_cmake_macros.h"), "w") as f:
            f.write("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
        failed = []
        root_dir = os.path.dirname(os.path.abspath(build))
        for e in todo:
            cmd = shlex.split(e["command"]) if "command" in e else list(e["arguments"])
            out = [a for a, prev in zip(cmd, [None] + cmd[:-1]) if "-o" not in (a, prev)]  # its output dropped
            rel = " + ".join(os.path.relpath(f, root_dir) for f in sources_of(e["file"]))
            obj = os.path.join(objs, f"{len(objects)}_{os.path.basename(e['file'])}.o")
            out += ["-DCG_HAVE_CUDA_KERNELS=1", f"-isystem{cuda_inc}", f"-I{stand_in}", "-c", "-o", obj]
            print(f"== CUDA-guarded: {rel}", flush=True)
            if subprocess.run(out, cwd=e["directory"]).returncode != 0:
                failed.append(rel)
            else:
                objects.append(obj)
        # The kernels (no torch in them): every .cu of the checkout's modules, compiled for the H100/H200's sm_90.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        nvcc = os.path.join(os.path.dirname(os.path.abspath(cuda_inc)), "bin", "nvcc")
        cus = sorted(os.path.join(d, f) for top in ("model", "dist", "lora", "trainer", "sampler", "data")
                     for d, _, files in os.walk(os.path.join(root, top)) for f in files if f.endswith(".cu"))
        if os.access(nvcc, os.X_OK):
            for cu in cus:
                rel = os.path.relpath(cu, root)
                print(f"== nvcc: {rel}", flush=True)
                obj = os.path.join(objs, f"{len(objects)}_{os.path.basename(cu)}.o")
                if subprocess.run([nvcc, "-std=c++17", "-gencode=arch=compute_90,code=sm_90", f"-I{root}", "-c", cu,
                                   "-o", obj]).returncode != 0:
                    failed.append(rel)
                else:
                    objects.append(obj)
        else:
            print(f"check_cuda_guarded: no {nvcc}: the .cu files are not compiled", flush=True)
            cus = []
        todo += cus
        missing = [] if failed or not cus else unresolved(objects, build)
    for name in missing:
        print(f"check_cuda_guarded: undefined in a GPU build's link: {name}", file=sys.stderr)
    if missing:
        print(f"check_cuda_guarded: {len(missing)} cg:: symbols the CUDA-guarded code calls are defined nowhere "
              "(compare each declaration with its definition)", file=sys.stderr)
        return 1
    if failed:
        print(f"check_cuda_guarded: {len(failed)} of {len(todo)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"check_cuda_guarded: {len(todo)} translation units compile (CG_HAVE_CUDA_KERNELS code; {len(cus)} with nvcc)"
          + ("; every cg:: symbol they call is defined" if cus else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
