using System.Text.Json;
using System.Text.Json.Serialization;

namespace WeakSeg.Refinement;

/// <summary>Settings of <see cref="DenseCrfBenchmark.Run"/>; defaults are a PASCAL VOC sized image (500×375, 21 labels).</summary>
public sealed record DenseCrfBenchmarkOptions
{
    public int Width { get; init; } = 500;
    public int Height { get; init; } = 375;
    public int Labels { get; init; } = 21;
    /// <summary>Kernel parameters; <see cref="DenseCrfConfig.Psa"/> by default. Its iterations are the benchmark's.</summary>
    public DenseCrfConfig Config { get; init; } = DenseCrfConfig.Psa;
    /// <summary>Untimed runs first (JIT, caches).</summary>
    public int WarmupRuns { get; init; } = 1;
    /// <summary>Timed runs; the report gives their median.</summary>
    public int MeasuredRuns { get; init; } = 5;
    public uint Seed { get; init; } = 1;
}

/// <summary>Result of <see cref="DenseCrfBenchmark.Run"/>: medians over the measured runs (seconds).</summary>
public sealed record DenseCrfBenchmarkReport(
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("height")] int Height,
    [property: JsonPropertyName("labels")] int Labels,
    [property: JsonPropertyName("iterations")] int Iterations,
    [property: JsonPropertyName("threads")] int Threads,
    [property: JsonPropertyName("runs")] int Runs,
    [property: JsonPropertyName("seconds_per_image")] double SecondsPerImage,
    [property: JsonPropertyName("seconds_lattice_build")] double SecondsLatticeBuild,
    [property: JsonPropertyName("seconds_lattice_build_gaussian")] double SecondsLatticeBuildGaussian,
    [property: JsonPropertyName("seconds_lattice_build_bilateral")] double SecondsLatticeBuildBilateral,
    [property: JsonPropertyName("seconds_per_iteration")] double SecondsPerIteration,
    [property: JsonPropertyName("seconds_inference")] double SecondsInference,
    [property: JsonPropertyName("seconds_per_image_min")] double SecondsPerImageMin,
    [property: JsonPropertyName("lattice_vertices_gaussian")] int LatticeVerticesGaussian,
    [property: JsonPropertyName("lattice_vertices_bilateral")] int LatticeVerticesBilateral,
    [property: JsonPropertyName("labels_changed_fraction")] double LabelsChangedFraction,
    [property: JsonPropertyName("config")] DenseCrfConfig Config)
{
    /// <summary>The report as JSON (<see cref="IO.WeakSegJson"/>: the kernel configuration with snake_case keys, as in affinity config.json).</summary>
    public string ToJson() => IO.WeakSegJson.Serialize(this);
}

/// <summary>End-to-end timing of <see cref="DenseCrf.Refine"/> on a deterministic synthetic image.</summary>
public static class DenseCrfBenchmark
{
    /// <summary>Times warm-up + measured runs and reports medians.</summary>
    public static DenseCrfBenchmarkReport Run(DenseCrfBenchmarkOptions options, IProgress<ProgressUpdate>? progress = null)
    {
        if (options.WarmupRuns < 0 || options.MeasuredRuns < 1)
            throw new WeakSegException($"CRF benchmark: needs ≥ 0 warm-up runs and ≥ 1 measured run, got {options.WarmupRuns} and {options.MeasuredRuns}");
        if (options.Width < 1 || options.Height < 1 || options.Labels < 2 || options.Labels > 256)
            throw new WeakSegException($"CRF benchmark: size {options.Width}×{options.Height} with {options.Labels} labels is not valid (width, height ≥ 1; labels 2..256)");
        var (rgb, probabilities) = SyntheticInput(options.Width, options.Height, options.Labels, options.Seed);
        int total = options.WarmupRuns + options.MeasuredRuns;
        var measured = new List<DenseCrfTimings>();
        DenseCrfResult? last = null;
        for (int run = 0; run < total; run++)
        {
            last = DenseCrf.Refine(rgb, options.Width, options.Height, probabilities, options.Config);
            if (run >= options.WarmupRuns) measured.Add(last.Timings);
            progress?.Report(new ProgressUpdate(run + 1, total, run < options.WarmupRuns ? "warm-up" : $"{last.Timings.TotalSeconds:F3}s"));
        }
        int n = options.Width * options.Height, changed = 0;
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int c = 1; c < options.Labels; c++)
                if (probabilities[c * n + i] > probabilities[best * n + i]) best = c;
            if (best != last!.Labels[i]) changed++;
        }
        var t = last!.Timings;
        return new DenseCrfBenchmarkReport(options.Width, options.Height, options.Labels, options.Config.Iterations, t.Threads, measured.Count,
            Median(measured.Select(m => m.TotalSeconds)), Median(measured.Select(m => m.LatticeBuildSeconds)),
            Median(measured.Select(m => m.LatticeBuildSecondsPerKernel[0])), Median(measured.Select(m => m.LatticeBuildSecondsPerKernel[1])),
            Median(measured.Select(m => m.SecondsPerIteration)), Median(measured.Select(m => m.InferenceSeconds)),
            measured.Min(m => m.TotalSeconds), t.LatticeVertices[0], t.LatticeVertices[1], (double)changed / n, options.Config);
    }

    static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
    }

    /// <summary>
    /// Deterministic test scene: a vertical colour gradient background, a few overlapping ellipses and rectangles of
    /// flat colours (one label each) with ±12 noise, and softmax probabilities that favour the true label by +1.5 logits
    /// over uniform noise in [0, 2.5) — so about a third of pixels start mislabelled and the CRF has work to do.
    /// </summary>
    /// <returns>RGB [H, W, 3] and probabilities [K, H, W]</returns>
    public static (byte[] Rgb, float[] Probabilities) SyntheticInput(int width, int height, int labels, uint seed)
    {
        ulong state = seed * 0x9E3779B97F4A7C15UL + 1;
        double Next()
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return ((z ^ (z >> 31)) >> 11) * (1.0 / (1UL << 53));
        }

        int shapes = Math.Max(3, Math.Min(12, labels - 1));
        var shape = new (double Cx, double Cy, double Rx, double Ry, bool Ellipse, int Label, byte R, byte G, byte B)[shapes];
        for (int s = 0; s < shapes; s++)
            shape[s] = (Next() * width, Next() * height, (0.08 + Next() * 0.2) * width, (0.08 + Next() * 0.2) * height, Next() < 0.6,
                        1 + s % (labels - 1), (byte)(Next() * 256), (byte)(Next() * 256), (byte)(Next() * 256));
        var rgb = new byte[width * height * 3];
        var probabilities = new float[labels * width * height];
        int n = width * height;
        var logits = new float[labels];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x, label = 0;
                double r = 40 + 150.0 * y / height, g = 90 + 60.0 * x / width, b = 160 - 100.0 * y / height;
                foreach (var sh in shape)
                {
                    double dx = (x - sh.Cx) / sh.Rx, dy = (y - sh.Cy) / sh.Ry;
                    bool inside = sh.Ellipse ? dx * dx + dy * dy <= 1 : Math.Abs(dx) <= 1 && Math.Abs(dy) <= 1;
                    if (inside) (label, r, g, b) = (sh.Label, sh.R, sh.G, sh.B);
                }
                rgb[i * 3] = (byte)Math.Clamp(r + Next() * 24 - 12, 0, 255);
                rgb[i * 3 + 1] = (byte)Math.Clamp(g + Next() * 24 - 12, 0, 255);
                rgb[i * 3 + 2] = (byte)Math.Clamp(b + Next() * 24 - 12, 0, 255);
                float max = float.MinValue, sum = 0;
                for (int c = 0; c < labels; c++)
                {
                    logits[c] = (float)(Next() * 2.5) + (c == label ? 1.5f : 0f);
                    max = Math.Max(max, logits[c]);
                }
                for (int c = 0; c < labels; c++) sum += logits[c] = MathF.Exp(logits[c] - max);
                for (int c = 0; c < labels; c++) probabilities[c * n + i] = logits[c] / sum;
            }
        return (rgb, probabilities);
    }
}
