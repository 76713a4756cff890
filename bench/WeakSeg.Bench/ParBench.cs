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
        var (threads, repeats) = Options(args);
        TorchRuntime.Initialize("cpu", threads);
        torch.manual_seed(0);
        var par = new PixelAdaptiveRefinement();
        foreach (var (label, height, width) in new[] { ("500x375 full", 375L, 500L), ("250x187 (x1/2, ToCo training)", 187L, 250L) })
        {
            using var image = torch.rand(1, 3, height, width);
            using var masks = torch.rand(1, 21, (height + 15) / 16, (width + 15) / 16).softmax(1);
            var (wallMin, wallMean, cpuMin) = Time(() => { using var refined = par.Refine(image, masks); }, repeats);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"PAR {label}, 21 classes, 48 neighbours, 10 iterations, threads {threads}: wall {wallMin:0.000} s min / {wallMean:0.000} s mean, process CPU {cpuMin:0.000} s min, of {repeats} runs"));
        }
    }

    /// <summary>--threads N (default 1) and --repeats R (default 3).</summary>
    internal static (int Threads, int Repeats) Options(string[] args)
    {
        int threads = 1, repeats = 3;
        for (int i = 0; i + 1 < args.Length; i++)
        {
            if (args[i] == "--threads") threads = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--repeats") repeats = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        return (threads, repeats);
    }

    /// <summary>One warm-up call, then <paramref name="repeats"/> timed calls: wall seconds (min, mean) and process CPU seconds (min).</summary>
    internal static (double WallMin, double WallMean, double CpuMin) Time(Action run, int repeats)
    {
        run();
        var times = new List<double>();
        var cpu = new List<double>();
        var process = Process.GetCurrentProcess();
        for (int r = 0; r < repeats; r++)
        {
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            run();
            times.Add(clock.Elapsed.TotalSeconds);
            process.Refresh();
            cpu.Add((process.TotalProcessorTime - cpuBefore).TotalSeconds);
        }
        return (times.Min(), times.Average(), cpu.Min());
    }
}

/// <summary>
/// Seconds per training step of the ToCo, MoRe and FSR cpu presets (batch of random 96×96 images, segmentation and every
/// other term active, AdamW step included). Usage: <c>dotnet run -c Release -- single-stage-step [--threads N] [--steps S]</c>.
/// </summary>
public static class SingleStageStepBench
{
    public static void Run(string[] args)
    {
        int threads = 1, steps = 4;
        for (int i = 0; i + 1 < args.Length; i++)
        {
            if (args[i] == "--threads") threads = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            if (args[i] == "--steps") steps = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        }
        TorchRuntime.Initialize("cpu", threads);
        torch.manual_seed(0);
        var toco = WeakSeg.Methods.ToCo.ToCoConfig.Cpu with { Segmentation = new WeakSeg.Methods.ToCo.LossWeight(0.1, 0) };
        var more = WeakSeg.Methods.MoRe.MoReConfig.Cpu with { Segmentation = new WeakSeg.Methods.ToCo.LossWeight(0.12, 0) };
        Measure("toco", new WeakSeg.Methods.ToCo.ToCoTrainable(new WeakSeg.Methods.ToCo.ToCoNetwork(toco)), toco.NumClasses, toco.BatchSize, toco.CropSize, steps, threads);
        Measure("more", new WeakSeg.Methods.MoRe.MoReTrainable(new WeakSeg.Methods.MoRe.MoReNetwork(more)), more.NumClasses, more.BatchSize, more.CropSize, steps, threads);
        var fsr = WeakSeg.Methods.Fsr.FsrConfig.Cpu with { Segmentation = new WeakSeg.Methods.ToCo.LossWeight(0.1, 0), RandomMaskingSteps = 0 };
        using var fsrMethod = new WeakSeg.Methods.Fsr.FsrMethod(fsr);
        double fsrStep = Measure("fsr", fsrMethod, fsr.NumClasses, fsr.BatchSize, fsr.CropSize, steps, threads);
        MeasureTeacher(fsrMethod.FsrModel, fsr.BatchSize, fsr.CropSize, steps, fsrStep);
    }

    /// <summary>The FSR teacher's part of a step: its forward over both views (no grad) plus the EMA update, as a share of the step.</summary>
    static void MeasureTeacher(WeakSeg.Methods.Fsr.FsrModel model, int batch, int crop, int steps, double stepSeconds)
    {
        var wall = new List<double>();
        for (int s = 0; s <= steps; s++)
        {
            using var scope = torch.NewDisposeScope();
            var views = torch.randn(2 * batch, 3, crop, crop);
            var clock = Stopwatch.StartNew();
            using (torch.no_grad()) model.Teacher.Project(views);
            model.UpdateTeacher(0.999);
            if (s > 0) wall.Add(clock.Elapsed.TotalSeconds);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fsr teacher (forward of 2×{batch} views + EMA): wall {wall.Min():0.000} s/step min = {100 * wall.Min() / stepSeconds:0.0} % of the fsr step"));
    }

    static double Measure(string name, WeakSeg.Training.ITrainable trainable, int classes, int batch, int crop, int steps, int threads)
    {
        var parameters = trainable.TrainableParameters().Select(p => p.Parameter).ToList();
        using var optimizer = torch.optim.AdamW(parameters, 1e-4);
        trainable.Model.train();
        var process = Process.GetCurrentProcess();
        var wall = new List<double>();
        var cpu = new List<double>();
        for (int s = 0; s <= steps; s++)
        {
            using var scope = torch.NewDisposeScope();
            var images = torch.randn(batch, 3, crop, crop);
            var labels = torch.zeros(batch, classes);
            for (int i = 0; i < batch; i++) { labels[i, i % classes] = 1f; labels[i, (3 * i + 1) % classes] = 1f; }
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            optimizer.zero_grad();
            var context = new WeakSeg.Training.TrainStepContext(s, steps + 1, 1e-4, new Random(s));
            var terms = trainable.ComputeLoss(new WeakSeg.Training.TrainBatch(images, labels), context);
            terms.Total.backward();
            optimizer.step();
            trainable.AfterOptimizerStep(context);
            process.Refresh();
            if (s == 0) continue;                                                   // warm-up step
            wall.Add(clock.Elapsed.TotalSeconds);
            cpu.Add((process.TotalProcessorTime - cpuBefore).TotalSeconds);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name} cpu preset, batch {batch} of {crop}×{crop}, threads {threads}: wall {wall.Min():0.000} s/step min ({batch / wall.Min():0.0} images/s), process CPU {cpu.Min():0.000} s/step min, of {steps} steps"));
        return wall.Min();
    }
}

/// <summary>
/// Seconds per image of <c>weakseg pseudo --par</c>'s refinement (<see cref="ParPseudoLabelRefiner.Label(WeakSeg.Data.RgbImage, WeakSeg.Evaluation.CamMaps, double, WeakSeg.PseudoLabels.UncertainBand?)"/>):
/// a 500×375 image with 20 foreground maps (21 classes with the background), at full resolution and at 1/2, with one background
/// level (--threshold) and with ToCo's two levels (--uncertain 0.25:0.7). Usage: <c>dotnet run -c Release -- par-pseudo [--threads N] [--repeats R]</c>.
/// </summary>
public static class ParPseudoBench
{
    public static void Run(string[] args)
    {
        var (threads, repeats) = ParBench.Options(args);
        TorchRuntime.Initialize("cpu", threads);
        const int width = 500, height = 375, classes = 20;
        var random = new Random(0);
        var pixels = new byte[width * height * 3];
        random.NextBytes(pixels);
        var image = new WeakSeg.Data.RgbImage(width, height, pixels);
        var maps = new float[classes * width * height];
        for (int i = 0; i < maps.Length; i++) maps[i] = (float)random.NextDouble();
        var camMaps = new WeakSeg.Evaluation.CamMaps("bench", maps, Enumerable.Range(1, classes).ToArray(), height, width);
        using var dir = new TempFolder();
        foreach (var downScale in new[] { 1, 2 })
            foreach (var band in new WeakSeg.PseudoLabels.UncertainBand?[] { null, new(0.25f, 0.7f) })
            {
                var refiner = new ParPseudoLabelRefiner(dir.Path, ParConfig.Default, downScale);
                var (wallMin, wallMean, cpuMin) = ParBench.Time(() => refiner.Label(image, camMaps, 0.5, band), repeats);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"pseudo --par, 500x375, 21 classes, 1/{downScale} scale, {(band is null ? "one level (--threshold 0.5)" : "two levels (--uncertain 0.25:0.7)")}, threads {threads}: wall {wallMin:0.000} s min / {wallMean:0.000} s mean, process CPU {cpuMin:0.000} s min, of {repeats} runs"));
            }
    }

    sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("weakseg-par-bench-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
