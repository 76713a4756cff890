"""Driver of bench/side_by_side.sh: runs WeakSeg's `bench train` / `bench seg` and bench/pytorch/bench_step.py in fresh
processes, interleaved (round by round, thread count by thread count, one implementation after the other), with the
thread count pinned for libtorch, OpenMP, MKL and OpenBLAS, and prints the best of the rounds.

Figures per run: training images/s over the timed steps, CPU utilisation = CPU time ÷ (wall time × threads) (near 1 on
idle cores; lower means other processes took the CPU), images per CPU-second (images/s ÷ (utilisation × threads): on a
shared machine the fairer comparison, though it credits busy-waiting threads as work), and the 1024³ float32 GEMM GFLOP/s each implementation measured
in the same process. Standard library only (runs with the interpreter that has torch).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def pinned_env(threads, extra=None):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def run(cmd, env):
    """Runs cmd; returns (stdout, wall seconds, child CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"side_by_side: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.stdout, wall, cpu


def weakseg(cli, model, threads, batch, steps, warmup, extra_env=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        if model == "mctformer":
            cmd = ["dotnet", cli, "bench", "train", "--model", "cpu", "--threads", str(threads), "--batch-size", str(batch),
                   "--steps-long", str(warmup + steps), "--warmup-steps", str(warmup), "--probe-step", "1", "--json", out]
        else:
            cmd = ["dotnet", cli, "bench", "seg", "--model", "cpu", "--threads", str(threads), "--batch-size", str(batch),
                   "--steps", str(steps), "--warmup", str(warmup), "--images", "1", "--json", out]
        _, wall, cpu = run(cmd, pinned_env(threads, extra_env))
        with open(out) as f:
            r = json.load(f)
    if model == "mctformer":
        return {"images_per_s": r["images_per_s"], "cpu_utilisation": r["cpu_utilisation"], "gemm_gflops": r["gemm_gflops"], "cpu_scope": "timed steps"}
    # bench seg reports no CPU time of its own: whole-process figure (includes start-up, GEMM and inference)
    return {"images_per_s": r["train_images_per_s"], "cpu_utilisation": cpu / (wall * threads), "gemm_gflops": r["gemm_gflops"], "cpu_scope": "whole process"}


def pytorch(python, model, threads, batch, steps, warmup):
    cmd = [python, os.path.join(HERE, "pytorch", "bench_step.py"), "--model", model, "--threads", str(threads),
           "--batch-size", str(batch), "--steps", str(steps), "--warmup", str(warmup)]
    out, _, _ = run(cmd, pinned_env(threads))
    r = json.loads(out.strip().splitlines()[-1])
    r["cpu_scope"] = "timed steps"
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cli", required=True, help="path of weakseg.dll")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "2")), help="interleaved rounds; the best is shown")
    ap.add_argument("--threads", default=os.environ.get("THREADS", "1 2"), help='thread counts, e.g. "1 2"')
    ap.add_argument("--models", default=os.environ.get("MODELS", "mctformer segmenter"))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=int(os.environ.get("STEPS", "20")), help="timed training steps per run")
    ap.add_argument("--warmup", type=int, default=int(os.environ.get("WARMUP", "5")), help="untimed steps first")
    ap.add_argument("--override-off", action="store_true", help="also run WeakSeg with WEAKSEG_MKL_VENDOR_OVERRIDE=0")
    ap.add_argument("--json", help="also write every run as JSON to this file")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split()]
    models = args.models.split()
    impls = ["weakseg"] + (["weakseg-mkl-override-off"] if args.override_off else []) + ["pytorch"]
    runs = []
    load = lambda: open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"  # noqa: E731
    print(f"side_by_side: {args.rounds} interleaved rounds × threads {threads} × {models}; batch {args.batch_size}, "
          f"{args.warmup} untimed + {args.steps} timed steps per run; load average {load()}", flush=True)
    for rnd in range(1, args.rounds + 1):
        for t in threads:
            for m in models:
                for impl in impls:
                    if impl == "pytorch":
                        r = pytorch(sys.executable, m, t, args.batch_size, args.steps, args.warmup)
                    else:
                        extra = {"WEAKSEG_MKL_VENDOR_OVERRIDE": "0"} if impl.endswith("off") else None
                        r = weakseg(args.cli, m, t, args.batch_size, args.steps, args.warmup, extra)
                    r.update(round=rnd, threads=t, model=m, impl=impl)
                    runs.append(r)
                    r["images_per_cpu_s"] = r["images_per_s"] / max(1e-9, r["cpu_utilisation"] * t)
                    print(f"  round {rnd}, {t} thread(s), {m:9s} {impl:26s} {r['images_per_s']:7.1f} img/s  "
                          f"CPU {r['cpu_utilisation']:.2f}  {r['images_per_cpu_s']:7.1f} img/CPU-s  GEMM {r['gemm_gflops']:6.1f} GFLOP/s", flush=True)
    print(f"load average at the end {load()}\n")

    def best(impl, m, t):
        rs = [r for r in runs if r["impl"] == impl and r["model"] == m and r["threads"] == t]
        top = max(rs, key=lambda r: r["images_per_s"])
        return top, max(r["gemm_gflops"] for r in rs)

    head = ["model", "threads"]
    for impl in impls:
        head += [f"{impl} img/s", "CPU", "img/CPU-s", "GEMM"]
    head += ["WeakSeg ÷ PyTorch"]
    rows = []
    for m in models:
        for t in threads:
            row = [m, str(t)]
            for impl in impls:
                top, gemm = best(impl, m, t)
                star = "*" if top["cpu_scope"] != "timed steps" else ""
                row += [f"{top['images_per_s']:.1f}", f"{top['cpu_utilisation']:.2f}{star}", f"{top['images_per_cpu_s']:.1f}{star}", f"{gemm:.0f}"]
            ws, _ = best("weakseg", m, t)
            pt, _ = best("pytorch", m, t)
            row.append(f"{ws['images_per_s'] / pt['images_per_s']:.2f}")
            rows.append(row)
    print(f"Best of {args.rounds} interleaved rounds (training images/s; CPU = CPU time ÷ (wall × threads); img/CPU-s = images per "
          f"CPU-second, the figure least disturbed by other processes; GEMM = best 1024³ float32 GFLOP/s):")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(" --- " for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if any(r["cpu_scope"] != "timed steps" for r in runs):
        print("* whole-process CPU utilisation (bench seg reports none for its timed steps): includes start-up, the GEMM and inference.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
