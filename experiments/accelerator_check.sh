#!/usr/bin/env bash
# The suite and the benchmark on whatever accelerator JAX finds, with a Markdown table.
#
#   bash experiments/accelerator_check.sh [OUT_DIR]     (default: experiments/out/accelerator)
#
# Needs a JAX that sees the accelerator in .venv (for an NVIDIA GPU:
# .venv/bin/pip install "jax[cuda12]"). Writes OUT_DIR/report.md (the machine, the test
# summary, the benchmark rows as a table), OUT_DIR/bench.json and OUT_DIR/pytest.txt.
# Exits 1 if JAX finds no accelerator (the CPU figures are docs/benchmarks.md's).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-experiments/out/accelerator}"
mkdir -p "$out"
py=.venv/bin/python
backend=$($py -c "import jax; print(jax.default_backend())")
if [ "$backend" = "cpu" ]; then
    echo "accelerator_check: JAX finds no accelerator here (backend: cpu)" >&2
    exit 1
fi
$py -m pytest -q -p no:cacheprovider > "$out/pytest.txt" 2>&1
tests=$?
$py experiments/bench_many.py --out "$out/bench.json" > "$out/bench.txt" 2>&1
bench=$?
$py - "$out" "$tests" "$bench" <<'PY'
import json, sys, pathlib
out, tests, bench = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
summary = (out / "pytest.txt").read_text().strip().splitlines()[-1]
lines = ["# jaxbp on an accelerator", "", f"Tests: {summary} (exit {tests}).", ""]
if bench == 0:
    doc = json.loads((out / "bench.json").read_text())
    lines += [f"Machine: {doc['machine']}; JAX {doc['jax']}; matmul {doc['matmul_gflops']:.0f} GFLOP/s.", ""]
    lines += ["| case | N | method | M network-steps/s | compile (s) | GFLOP/s | of matmul |",
              "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in doc["rows"]:
        f = lambda k, spec: format(r[k], spec) if r.get(k) is not None else ""
        lines.append(
            f"| {r['case']} | {r['N']} | {r['method']} | {r['net_steps_per_s'] / 1e6:.3f} | "
            f"{f('compile_s', '.2f')} | {f('GFLOP/s', '.1f')} | {f('of_matmul', '.0%')} |"
        )
else:
    lines.append(f"The benchmark failed (exit {bench}): see bench.txt.")
(out / "report.md").write_text("\n".join(lines) + "\n")
print(out / "report.md")
PY
exit $(( tests != 0 || bench != 0 ))
