#!/usr/bin/env python3
"""Compares two folders of scripts/same-runs.sh: every log without its timing fields,
every checkpoint without its timing lines (and the header length and checksum that
cover them), genotypes byte for byte. Usage: same-runs-compare.py BEFORE AFTER"""
import json,os,re,sys
b,a=sys.argv[1],sys.argv[2]
def strip(o):
    if isinstance(o,dict): return {k:strip(v) for k,v in o.items() if not (k.endswith('_s') or k.endswith('_ms') or 'time' in k or k.startswith('step_ms') or k.endswith('cpu_ms'))}
    if isinstance(o,list): return [strip(x) for x in o]
    return o
def ck(p):  # a checkpoint without its timing header lines
    return re.sub(rb'timing\.\d+=[^\n]*\n', b'', open(p,'rb').read())
bad=n=0
for d in sorted(os.listdir(b)):
    if not os.path.isdir(f'{b}/{d}'): continue
    for f in sorted(os.listdir(f'{b}/{d}')):
        p,q=f'{b}/{d}/{f}',f'{a}/{d}/{f}'
        if f.endswith('.jsonl'): same=[strip(json.loads(l)) for l in open(p)]==[strip(json.loads(l)) for l in open(q)]
        elif f=='checkpoint.bin': same=ck(p)[16:-8]==ck(q)[16:-8]  # bytes 8-16: the header's length; the last 8: a checksum; both cover the timings
        elif f in ('genotype.txt','genotype.json','model.safetensors','bench.json'): same=open(p,'rb').read()==open(q,'rb').read()
        else: continue
        n+=1
        if not same: bad+=1; print('DIFFERS',d,f)
print(f'{n} files compared (logs without timings, checkpoints without their timing lines, header length and checksum, genotypes byte for byte), {bad} differ')
