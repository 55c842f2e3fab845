"""Fences a GPU needs and the emulator cannot see (its blocks never overlap,
its __threadfence does nothing): a kernel that hands work to the last block
to finish through a ticket (an atomicAdd) must make its own results visible
with __threadfence() before taking the ticket, and fence again before it
reads the other blocks' results (__ldcg). Prints each kernel that does not;
exits 1 if any. Usage: python3 fences.py KERNEL.cu…"""
import re
import sys

bad = 0
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    starts = [m.start() for m in re.finditer(r'extern "C" __global__', text)]
    for i, s in enumerate(starts):
        body = text[s : starts[i + 1] if i + 1 < len(starts) else len(text)]
        name = re.search(r"void\s+(\w+)", body).group(1)
        ticket = body.find("atomicAdd(")
        if ticket < 0:
            continue
        if body.find("__threadfence()") < 0 or body.find("__threadfence()") > ticket:
            print(f"FENCE {path}: {name}: no __threadfence() before it takes its ticket (atomicAdd)")
            bad = 1
        read = body.find("__ldcg(", ticket)
        if read >= 0 and not 0 <= body.find("__threadfence()", ticket) < read:
            print(f"FENCE {path}: {name}: no __threadfence() between its ticket and reading other blocks (__ldcg)")
            bad = 1
print("fences: every ticket kernel fences" if not bad else "fences: FAILED")
sys.exit(bad)
