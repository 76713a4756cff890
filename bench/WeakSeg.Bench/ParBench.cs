using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using WeakSeg.Refinement.Par;
using WeakSeg.Runtime;

namespace WeakSeg.Bench;

/// <summary>
/// Seconds per image of pixel-adaptive refinement (48 neighbours, 10 iterations) on a 500×375 image with 21 class masks,
/// at full resolution and at ToCo's ×1/2 training resolution. Usage: <c>dotnet run -c Release -- par [--threads N] [--repeats R]</c>.
/// </summary>
public static class ParBench
{
    public static void Run(string[] args)
    {
        int threads = 1, repeats = 3;
        for (int i = 0; i + 1 < args.Length; i++)
        {
            if (args[i] == "--threads") threads = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--repeats") repeats = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        TorchRuntime.Initialize("cpu", threads);
        torch.manual_seed(0);
        var par = new PixelAdaptiveRefinement();
        foreach (var (label, height, width) in new[] { ("500x375 full", 375L, 500L), ("250x187 (x1/2, ToCo training)", 187L, 250L) })
        {
            using var image = torch.rand(1, 3, height, width);
            using var masks = torch.rand(1, 21, (height + 15) / 16, (width + 15) / 16).softmax(1);
            using (var warm = par.Refine(image, masks)) { }
            var times = new List<double>();
            var cpu = new List<double>();
            var process = Process.GetCurrentProcess();
            for (int r = 0; r < repeats; r++)
            {
                process.Refresh();
                var cpuBefore = process.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                using var refined = par.Refine(image, masks);
                times.Add(clock.Elapsed.TotalSeconds);
                process.Refresh();
                cpu.Add((process.TotalProcessorTime - cpuBefore).TotalSeconds);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"PAR {label}, 21 classes, 48 neighbours, 10 iterations, threads {threads}: wall {times.Min():0.000} s min / {times.Average():0.000} s mean, process CPU {cpu.Min():0.000} s min, of {repeats} runs"));
        }
    }
}
