// WeakSeg micro-benchmarks (BenchmarkDotNet). End-to-end figures come from `weakseg bench ...`.
if (args.Length > 0 && args[0] == "par") { WeakSeg.Bench.ParBench.Run(args); return; }
if (args.Length > 0 && args[0] == "single-stage-step") { WeakSeg.Bench.SingleStageStepBench.Run(args); return; }
if (args.Length > 0 && args[0] == "par-pseudo") { WeakSeg.Bench.ParPseudoBench.Run(args); return; }
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
