// WeakSeg micro-benchmarks (BenchmarkDotNet). End-to-end figures come from `weakseg bench ...`.
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
