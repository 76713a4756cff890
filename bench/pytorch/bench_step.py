"""Times the training step of `weakseg bench train --model cpu` (MCTformer-V2) or `weakseg bench seg --model cpu`
(segmenter) in PyTorch and prints one JSON object: images/s, CPU utilisation and the 1024³ GEMM GFLOP/s.

Run with the thread count pinned before torch loads (bench/side_by_side.sh does this):
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/python3 bench/pytorch/bench_step.py --model mctformer --threads 1
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True   # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weakseg_models import MctFormerV2, Segmenter, clipping_loss  # noqa: E402

NO_DECAY = ("pos_embed", "cls_token", "cls_emb")


def gemm_gflops(n, warmup=3, repeats=9):
    """Median time of an n×n float32 matmul, as 2n³/t GFLOP/s (WeakSeg's GemmCeiling.Measure)."""
    gen = torch.Generator().manual_seed(1234)
    a, b = torch.rand(n, n, generator=gen), torch.rand(n, n, generator=gen)
    for _ in range(warmup):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2.0 * n ** 3 / statistics.median(times) / 1e9


def adamw(model, lr, weight_decay):
    """Two groups like WeakSeg's ParameterGroups: decay on weight matrices, none on biases, 1-D tensors and tokens."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        exempt = p.dim() <= 1 or name.endswith("bias") or name.split(".")[-1] in NO_DECAY
        (no_decay if exempt else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mctformer", "segmenter"], default="mctformer")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=60, help="timed steps")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    ap.add_argument("--gemm-size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gemm = gemm_gflops(args.gemm_size)
    b = args.batch_size
    if args.model == "mctformer":
        model = MctFormerV2()
        optimizer = adamw(model, 6.25e-5, 0.05)
        images = torch.randn(b, 3, 96, 96)
        labels = (torch.rand(b, 10) < 0.3).float()
        batches = lambda step: (images, labels)  # noqa: E731  (one fixed batch, as bench train)

        def loss_of(batch):
            imgs, lab = batch
            return MctFormerV2.loss(model(imgs), lab), []
    else:
        model = Segmenter()
        optimizer = adamw(model, 3e-4, 0.01)

        def batches(step):  # a fresh synthetic batch per step, as bench seg: N(0,1) crops, 8×8-pixel random class blocks
            gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
            imgs = torch.randn(b, 3, 96, 96, generator=gen)
            masks = torch.randint(0, 11, (b, 12, 12), generator=gen).repeat_interleave(8, 1).repeat_interleave(8, 2).contiguous()
            return imgs, masks

        def loss_of(batch):
            imgs, masks = batch
            return clipping_loss(model(imgs), masks)

    model.train()
    params = [p for p in model.parameters()]
    total = args.warmup + args.steps
    start_wall = start_cpu = None
    for step in range(total):
        if step == args.warmup:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
        batch = batches(step)
        optimizer.zero_grad(set_to_none=True)
        loss, parts = loss_of(batch)
        loss_value = loss.item()
        _ = [p.mean().item() for p in parts]
        loss.backward()
        norms = torch.stack([torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None])
        grad_norm = torch.linalg.vector_norm(norms).item()   # the trainer's NaN guard and log
        if not (loss_value == loss_value and grad_norm == grad_norm):
            raise SystemExit("non-finite loss or gradient")
        optimizer.step()
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    print(json.dumps({
        "implementation": f"pytorch {torch.__version__}",
        "model": args.model, "threads": torch.get_num_threads(), "batch_size": b, "timed_steps": args.steps,
        "images_per_s": args.steps * b / wall, "cpu_utilisation": cpu / (wall * args.threads),
        "gemm_gflops": gemm, "loss_last": loss_value,
    }))


if __name__ == "__main__":
    main()
