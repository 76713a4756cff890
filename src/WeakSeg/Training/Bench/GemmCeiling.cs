using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Training.Bench;

/// <summary>Result of a GEMM speed measurement.</summary>
/// <param name="N">square matrix size</param>
/// <param name="MedianSeconds">median time of one n×n×n matmul</param>
/// <param name="Gflops">2·n³ / median seconds / 1e9</param>
public sealed record GemmMeasurement(int N, int Threads, double MedianSeconds, double Gflops);

/// <summary>A GEMM measurement with the process's CPU time over it.</summary>
/// <param name="Wall">the timed matmuls' median (<see cref="GemmCeiling.Measure"/>)</param>
/// <param name="GflopsPerCpuSecond">FLOPs of every matmul run (warm-up included) ÷ the process CPU seconds they took ÷ 1e9: what the
/// kernels do with the time they get, even when other processes share the cores</param>
public sealed record GemmCpuMeasurement(GemmMeasurement Wall, double GflopsPerCpuSecond);

/// <summary>The machine's practical float32 matmul ceiling (default 1024³), the denominator of "achieved ÷ GEMM GFLOP/s".</summary>
public static class GemmCeiling
{
    /// <summary>FLOPs of an (m×k)·(k×n) matmul: one multiply and one add per term = 2·m·k·n.</summary>
    public static double MatmulFlops(long m, long k, long n) => 2.0 * m * k * n;

    /// <summary>GFLOP per CPU-second of <paramref name="matmuls"/> n×n×n matmuls that took <paramref name="cpuSeconds"/> of process CPU time
    /// (a zero CPU time counts as 1 ns).</summary>
    public static double GflopsPerCpuSecond(int n, int matmuls, double cpuSeconds) => matmuls * MatmulFlops(n, n, n) / Math.Max(1e-9, cpuSeconds) / 1e9;

    /// <summary><see cref="Measure"/> and the process CPU time it took (<c>weakseg env</c>).</summary>
    public static GemmCpuMeasurement MeasureWithCpuTime(int n = 1024, int warmup = 3, int repeats = 9)
    {
        using var process = Process.GetCurrentProcess();
        var before = process.TotalProcessorTime;
        var wall = Measure(n, warmup, repeats);
        process.Refresh();
        double cpu = (process.TotalProcessorTime - before).TotalSeconds;
        return new GemmCpuMeasurement(wall, GflopsPerCpuSecond(n, warmup + repeats, cpu));
    }

    /// <summary>Times <paramref name="repeats"/> n×n float32 matmuls on CPU after <paramref name="warmup"/> untimed ones; median.
    /// Uses its own generator (does not disturb torch's global RNG).</summary>
    public static GemmMeasurement Measure(int n = 1024, int warmup = 3, int repeats = 9)
    {
        if (n < 1 || repeats < 1 || warmup < 0) throw new ArgumentOutOfRangeException(nameof(n));
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(1234);
        var a = torch.rand(n, n, generator: gen);
        var b = torch.rand(n, n, generator: gen);
        for (int i = 0; i < warmup; i++) torch.mm(a, b).Dispose();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            var c = torch.mm(a, b);
            times[i] = sw.Elapsed.TotalSeconds;
            c.Dispose();
        }
        Array.Sort(times);
        double median = repeats % 2 == 1 ? times[repeats / 2] : 0.5 * (times[repeats / 2 - 1] + times[repeats / 2]);
        return new GemmMeasurement(n, torch.get_num_threads(), median, MatmulFlops(n, n, n) / median / 1e9);
    }
}
