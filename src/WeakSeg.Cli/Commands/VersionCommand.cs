using System.CommandLine;
using System.Globalization;
using TorchSharp;
using WeakSeg.Runtime;
using WeakSeg.Training.Bench;
using WeakSeg.Cli.Options;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg env`: versions, whether libtorch loads, the MKL vendor override and a short GEMM measurement
/// (a quick installation and speed check).</summary>
public static class VersionCommand
{
    public static Command Create()
    {
        var runtime = new RuntimeOptions(RuntimePart.Threads, threadsUse: "for the GEMM measurement");
        var gemm = new Option<int>("--gemm-size") { Description = "Side n of the n×n×n float32 matmul timed; 0 skips the measurement.", DefaultValueFactory = _ => 1024 };
        var cmd = new Command("env", "Print WeakSeg, .NET and libtorch versions, check that libtorch loads, and report the MKL vendor override and the GEMM GFLOP/s this machine reaches.");
        foreach (var o in runtime.All) cmd.Options.Add(o);
        cmd.Options.Add(gemm);
        cmd.SetAction(parseResult =>
        {
            int n = parseResult.GetValue(gemm), t = runtime.ThreadsValue(parseResult);
            if (n != 0 && n < 64) throw new WeakSegException($"--gemm-size must be 0 (skip) or ≥ 64 (got {n})");
            if (t < 0) throw new WeakSegException($"--threads must be ≥ 0 (got {t})");
            TorchRuntime.Initialize("cpu", t);
            var mkl = MklVendorOverride.Status;
            Console.WriteLine($"weakseg {typeof(TorchRuntime).Assembly.GetName().Version}");
            Console.WriteLine($".NET {Environment.Version}");
            Console.WriteLine($"libtorch {torch.__version__} (threads {torch.get_num_threads()}, cuda {(torch.cuda.is_available() ? "yes" : "no")})");
            Console.WriteLine($"cpu vendor {mkl.CpuVendor}");
            Console.WriteLine($"mkl vendor override {StateWord(mkl.State)}: {mkl.Detail}");
            Console.WriteLine("nnpack " + NnpackSwitch.State switch
            {
                NnpackState.Available => "available (left on)",
                NnpackState.UnavailableTurnedOff => "not supported on this CPU: turned off (libtorch no longer warns on every convolution)",
                _ => "not probed (this libtorch does not export the NNPACK switch)",
            });
            var onednn = OneDnnConvolutionCheck.Status;
            Console.WriteLine($"onednn convolution {OneDnnWord(onednn.State)}: {onednn.Detail}");
            if (MklVendorOverride.MklCpuDispatchLevel() is int level)
                Console.WriteLine($"mkl dispatch level {level} (0 = MKL's generic path)");
            if (n > 0)
            {
                const int repeats = 5;
                var (m, perCpuSecond) = GemmCeiling.MeasureWithCpuTime(n, warmup: 1, repeats);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"gemm {n}³ float32 {m.Gflops:F1} GFLOP/s on {m.Threads} threads (median of {repeats}), {perCpuSecond:F1} GFLOP per CPU-second"));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>One word per oneDNN check state, stable for scripts: correct, turned-off, wrong-kept, off, unavailable.</summary>
    public static string OneDnnWord(OneDnnConvolutionState state) => state switch
    {
        OneDnnConvolutionState.Correct => "correct",
        OneDnnConvolutionState.WrongTurnedOff => "turned-off",
        OneDnnConvolutionState.WrongKeptByEnvironment => "wrong-kept",
        OneDnnConvolutionState.TurnedOffByEnvironment => "off",
        OneDnnConvolutionState.NotExported => "unavailable",
        _ => "not-checked",
    };

    /// <summary>One word per state, stable for scripts: active, off, not-needed, not-applicable, unavailable, failed.</summary>
    public static string StateWord(MklVendorOverrideState state) => state switch
    {
        MklVendorOverrideState.Active => "active",
        MklVendorOverrideState.DisabledByEnvironment => "off",
        MklVendorOverrideState.NotNeededOnIntel => "not-needed",
        MklVendorOverrideState.NotApplicable => "not-applicable",
        MklVendorOverrideState.SymbolNotExported => "unavailable",
        MklVendorOverrideState.Failed => "failed",
        _ => "not-loaded",
    };
}
