#!/usr/bin/env python3
"""Writes native/tools/mutants/*.patch: each breaks one check of the table
(native/affinity_table.cc) by an exact text replacement, for
native/tools/mutation-test.sh. Run it again after changing the table; it
fails if a replaced text is no longer there exactly once.
Usage: python3 native/tools/mutants/generate.py [MUTANT...]"""
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, '..', '..', '..'))
muts = {
 'no-seq-check-in-lookup': ("Lookups do not check the record's sequence counter (ReadIfMatch)", [
   ("  uint64_t s1 = r.seq.load(kAcquire);\n  if (s1 & 1) return -1;\n  // Seqlock reader without fences",
    "  uint64_t s1 = r.seq.load(kAcquire);\n  // Seqlock reader without fences"),
   ("  if (r.seq.load(kRelaxed) != s1) return -1;\n  if (match) {",
    "  (void)s1;\n  if (match) {"),
 ]),
 'no-slot-recheck': ("Lookups do not check that the slot still names the record they read", [
   ("  if (slot.load(kAcquire) != s) return -1;\n  AFFINITYD_RACE_POINT();\n  if (r.seq.load(kRelaxed) != s1) return -1;",
    "  AFFINITYD_RACE_POINT();\n  if (r.seq.load(kRelaxed) != s1) return -1;"),
 ]),
 'old-false-miss': ("The false miss of the old code: a consistent record of another key is passed over without checking the slot", [
   ("  AFFINITYD_RACE_POINT();\n  // What was read counts only",
    "  AFFINITYD_RACE_POINT();\n  if (!match) return r.seq.load(kRelaxed) == s1 ? 0 : -1;\n  // What was read counts only"),
 ]),
 'slot-recheck-after-seq': ("The slot is checked after the second seq load, outside the seqlock window", [
   ("  if (slot.load(kAcquire) != s) return -1;\n  AFFINITYD_RACE_POINT();\n  if (r.seq.load(kRelaxed) != s1) return -1;",
    "  if (r.seq.load(kRelaxed) != s1) return -1;\n  AFFINITYD_RACE_POINT();\n  if (slot.load(kAcquire) != s) return -1;"),
 ]),
 'no-move-check-in-lookup': ("A lookup that reaches an empty slot does not check whether an entry moved", [
   ("        if (moves_.load(kAcquire) == moves) return false;\n        break;",
    "        (void)moves;\n        return false;"),
 ]),
 'no-move-check-in-walk': ("A walk does not check whether an entry of the home it read moved", [
   ("    if (consistent && moves_.load(kAcquire) == moves) return;",
    "    (void)moves;\n    if (consistent) return;"),
 ]),
 'moves-not-published': ("Deletion moves entries back without bumping the move counter", [
   ("    if (moved) moves_.fetch_add(1, kRelease);\n    slots_[hole].store(s, kRelease);",
    "    slots_[hole].store(s, kRelease);"),
   ("  if (moved) moves_.fetch_add(1, kRelease);\n  slots_[hole].store(kEmpty, kRelease);",
    "  slots_[hole].store(kEmpty, kRelease);"),
 ]),
 'no-seq-check-in-walk': ("A walk does not check the record's sequence counter (ReadRecord)", [
   ("  uint64_t s1 = r.seq.load(kAcquire);\n  if (s1 & 1) return false;\n  // Acquire data loads, and the slot",
    "  uint64_t s1 = r.seq.load(kAcquire);\n  // Acquire data loads, and the slot"),
   ("  if (slot.load(kAcquire) != s) return false;\n  AFFINITYD_RACE_POINT();\n  if (r.seq.load(kRelaxed) != s1) return false;",
    "  if (slot.load(kAcquire) != s) return false;\n  AFFINITYD_RACE_POINT();"),
 ]),
 'no-dedupe-in-walk': ("A walk lists an entry met twice during a move twice", [
   ("      if (out->Seen(RecordOf(s), seq)) {", "      if (false && out->Seen(RecordOf(s), seq)) {"),
 ]),
}
only = sys.argv[1:] 
for name,(about,edits) in muts.items():
    if only and name not in only: continue
    d=tempfile.mkdtemp()
    os.makedirs(d+'/a/native'); os.makedirs(d+'/b/native')
    src=open(root+'/native/affinity_table.cc').read()
    m=src
    for old,new in edits:
        assert m.count(old)==1, (name, old)
        m=m.replace(old,new)
    open(d+'/a/native/affinity_table.cc','w').write(src)
    open(d+'/b/native/affinity_table.cc','w').write(m)
    diff=subprocess.run(['diff','-u','--label','a/native/affinity_table.cc','--label','b/native/affinity_table.cc','a/native/affinity_table.cc','b/native/affinity_table.cc'],cwd=d,capture_output=True,text=True).stdout
    open(f'{here}/{name}.patch','w').write(f'Mutant: {about}.\n'+diff)
    shutil.rmtree(d)
    print(f'{name}.patch')
