"""The Hub's distillation schemas, as Parquet (written by pyarrow with the Hub's nested types) and as
JSONL: each Parquet file imports with its JSONL twin's counts, and both with the counts the generator
computed from the data it wrote; the downloaded-folder layout imports with one command.

    python hub_check.py RETORT_BIN SETS_DIR

SETS_DIR is what make_hub_sets.py wrote: NAME.jsonl, NAME.parquet, expected.json and folders.
"""
import json
import os
import subprocess
import sys
import tempfile

import pyarrow.parquet as pq

KEYS = ("prompts", "samples", "prompts_with_reference")


def imported(bin_, path):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, RETORT_DB=os.path.join(tmp, "s.db"))
        run = subprocess.run([bin_, "import", path], env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"FAIL import {path}: {run.stderr.strip()}")
        stats = json.loads(subprocess.run([bin_, "stats", "--json"], env=env, capture_output=True, text=True, check=True).stdout)
        verdicts = sum(v["scored"] for v in stats["verifiers"].values())
        return {**{k: stats[k] for k in KEYS}, "verdicts": verdicts, "teachers": sorted(stats["by_teacher"]), "notes": run.stderr}


def main():
    bin_, sets = sys.argv[1], sys.argv[2]
    expected = json.load(open(os.path.join(sets, "expected.json")))
    failures = 0
    for name, want in sorted(expected.items()):
        path = os.path.join(sets, name)
        got = imported(bin_, path)
        checks = {k: want[k] for k in ("prompts", "samples", "verdicts") if k in want}
        bad = {k: (got[k], v) for k, v in checks.items() if got[k] != v}
        twin = None
        if name.endswith(".parquet"):
            twin_path = path[: -len(".parquet")] + ".jsonl"
            if os.path.exists(twin_path):
                twin = imported(bin_, twin_path)
                for k in ("prompts", "samples", "verdicts", "prompts_with_reference", "teachers"):
                    if twin[k] != got[k]:
                        bad[f"{k} vs JSONL twin"] = (got[k], twin[k])
            schema = pq.read_schema(path)
            types = ", ".join(f"{f.name}: {f.type}" for f in schema if "list" in str(f.type) or "struct" in str(f.type))
        else:
            types = ""
        if bad:
            failures += 1
            print(f"FAIL {name}: {bad}")
        else:
            print(f"ok   {name}: {got['prompts']} prompts, {got['samples']} samples, {got['verdicts']} verdicts"
                  + (", equal to its JSONL twin" if twin else "") + (f" [{types}]" if types else ""))
    if failures:
        raise SystemExit(f"{failures} of {len(expected)} Hub sets did not import as expected")
    print(f"Hub schemas: {len(expected)} files and folders import with the expected counts")


if __name__ == "__main__":
    main()
