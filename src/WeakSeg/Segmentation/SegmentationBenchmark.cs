using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Vit;
using WeakSeg.Runtime;
using WeakSeg.Training;
using WeakSeg.Training.Bench;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>Matmul FLOP count of a <see cref="SegmenterModel"/> (1 multiply-add = 2 FLOPs; norms, softmax, GELU, upsampling left out).</summary>
public static class SegmenterFlops
{
    /// <summary>
    /// Decoder forward FLOPs for an h×w input (N = h·w/p² patch tokens, C = K + 1 class queries, encoder width E, decoder width D,
    /// L layers): proj_dec 2·N·E·D + L × (a ViT block on N + C tokens of width D, MLP 4·D) + proj_patch 2·N·D² + proj_classes 2·C·D²
    /// + masks 2·N·C·D.
    /// </summary>
    public static double Decoder(SegmentationConfig config, int height, int width)
    {
        var enc = config.EncoderConfig;
        int c = config.NumClasses + 1, d = config.ResolvedDecoderDim;
        var dims = new VitDims(height, width, enc.PatchSize, d, config.DecoderLayers, 4.0, c, enc.InChannels);
        double n = dims.Patches;
        return 2 * n * enc.EmbedDim * d + config.DecoderLayers * VitFlops.Block(dims) + 2 * n * d * d + 2.0 * c * d * d + 2 * n * c * d;
    }

    /// <summary>Encoder (<see cref="VitFlops.Forward"/>, one class token; with a hybrid stem the p×p patch convolution replaced by the
    /// ResNet-18 trunk up to the stem's stride and the 1×1 projection) + <see cref="Decoder"/> forward FLOPs for one h×w input.</summary>
    public static double Forward(SegmentationConfig config, int height, int width)
    {
        var enc = config.EncoderConfig;
        var dims = Dims(enc, height, width);
        double stem = 0;
        if (VitStems.ResNetStages(enc.Stem) is var stages and > 0)
            stem = -VitFlops.PatchEmbed(dims) + 2.0 * dims.Patches * ResNetConfig.StageChannels(stages) * enc.EmbedDim + Trunk(config, height, width);
        return VitFlops.Forward(dims, Decoder(config, height, width)) + stem;
    }

    /// <summary>Forward FLOPs of a hybrid stem's ResNet-18 trunk (up to its stride) for one h×w input; 0 for the patch stem. A frozen trunk
    /// runs without gradients, so training counts it once instead of 3 × (<see cref="SegmentationFlops.TrainPerImage"/>).</summary>
    public static double Trunk(SegmentationConfig config, int height, int width)
    {
        int stages = VitStems.ResNetStages(config.EncoderConfig.Stem);
        return stages == 0 ? 0 : ResNetFlops.Forward(ResNetConfig.PackagedResNet18 with { Stages = stages }, height, width);
    }

    static VitDims Dims(VitConfig enc, int height, int width) =>
        new(height, width, enc.PatchSize, enc.EmbedDim, enc.Depth, enc.MlpRatio, 1, enc.InChannels);
}

/// <summary>
/// Convolution FLOP count of a <see cref="DeepLabModel"/> (1 multiply-add = 2 FLOPs; BatchNorm, ReLU, dropout, biases, the ASPP sum and
/// the bilinear upsampling left out). The trunk is <see cref="ResNetFlops.Forward"/> of <see cref="DeepLabModel.Trunk"/> (layers 3 and 4
/// dilated); its output is the ⌈H/8⌉×⌈W/8⌉ grid (conv1, max-pool and layer2 each halve a side rounding up). Every head conv keeps the
/// grid (padding = dilation) and is counted over all k² taps, the zero-padded ones included, as the convolution computes them.
/// </summary>
public static class DeepLabFlops
{
    /// <summary>
    /// Head forward FLOPs on a g_h×g_w grid (512 trunk channels, K + 1 classes): LargeFOV 2·g·(9·512·W + W·W + W·(K+1)) for fc6, fc7, fc8
    /// (W = <see cref="DeepLabSettings.HeadChannels"/>); ASPP 2·g·9·512·(K+1) per rate.
    /// </summary>
    public static double Head(SegmentationConfig config, int gridHeight, int gridWidth)
    {
        double cells = (double)gridHeight * gridWidth, inChannels = DeepLabModel.Trunk.OutputChannels, classes = config.NumClasses + 1;
        var settings = config.ResolvedDeepLab;
        return config.Model switch
        {
            SegmentationModel.DeepLabLargeFov => 2 * cells * (9 * inChannels * settings.HeadChannels
                                                             + (double)settings.HeadChannels * settings.HeadChannels + settings.HeadChannels * classes),
            SegmentationModel.DeepLabAspp => settings.AsppRates.Length * 2 * cells * 9 * inChannels * classes,
            _ => throw new WeakSegException($"DeepLabFlops needs a DeepLab model; got {SegmentationModels.Name(config.Model)}"),
        };
    }

    /// <summary>Dilated trunk + <see cref="Head"/> forward FLOPs for one h×w input.</summary>
    public static double Forward(SegmentationConfig config, int height, int width) =>
        ResNetFlops.Forward(DeepLabModel.Trunk, height, width) + Head(config, (height + 7) / 8, (width + 7) / 8);
}

/// <summary>FLOP count of whichever network <see cref="SegmentationConfig.Model"/> names, per training crop and per predicted image.</summary>
public static class SegmentationFlops
{
    /// <summary>Forward FLOPs of one h×w input: <see cref="SegmenterFlops.Forward"/> or <see cref="DeepLabFlops.Forward"/>.</summary>
    public static double Forward(SegmentationConfig config, int height, int width) => config.Model == SegmentationModel.Segmenter
        ? SegmenterFlops.Forward(config, height, width)
        : DeepLabFlops.Forward(config, height, width);

    /// <summary>
    /// Training FLOPs per crop ≈ 3 × forward (forward, gradients of activations, gradients of weights; see <see cref="VitFlops.TrainStep"/>).
    /// A DeepLab's trunk trains too (at a lower rate; only its BatchNorm statistics are frozen, which costs nothing), so it counts 3 × as
    /// well; the input gradient of the first conv, which libtorch skips, is included (under 1 % of the cpu DeepLab's count). A Segmenter's
    /// frozen ResNet-18 stem gets no gradients: its trunk counts once (<see cref="SegmenterFlops.Trunk"/>).
    /// </summary>
    public static double TrainPerImage(SegmentationConfig config)
    {
        double forward = Forward(config, config.CropSize, config.CropSize);
        bool frozenTrunk = config.Model == SegmentationModel.Segmenter && config.EncoderConfig.FreezeStem;
        return 3 * forward - (frozenTrunk ? 2 * SegmenterFlops.Trunk(config, config.CropSize, config.CropSize) : 0);
    }

    /// <summary>Inference FLOPs for one H×W image: Σ over scales of (1 or 2 with flip) × sliding windows × forward(crop).</summary>
    public static double InferPerImage(SegmentationConfig config, int height, int width, IReadOnlyList<double> scales, bool flip)
    {
        double perWindow = Forward(config, config.CropSize, config.CropSize), total = 0;
        foreach (var s in scales)
        {
            int h = Math.Max(1, (int)Math.Round(height * s)), w = Math.Max(1, (int)Math.Round(width * s));
            int windows = SlidingWindow.Starts(Math.Max(h, config.CropSize), config.CropSize, config.WindowStride).Length
                          * SlidingWindow.Starts(Math.Max(w, config.CropSize), config.CropSize, config.WindowStride).Length;
            total += (flip ? 2 : 1) * windows * perWindow;
        }
        return total;
    }
}

/// <summary>What <see cref="SegmentationBenchmark.Run"/> measures.</summary>
public sealed record SegmentationBenchmarkOptions
{
    /// <summary>Model and training settings (crop, batch size, optimizer), with an explicit class count (random tensors; default: the cpu
    /// preset with the built-in benchmark's K); <see cref="SegmentationConfig.Steps"/> is replaced by <see cref="TrainSteps"/>.</summary>
    public SegmentationConfig Config { get; init; } = SegmentationConfig.Cpu with { NumClasses = new Data.Synthetic.SyntheticDatasetConfig().NumClasses };
    /// <summary>Training steps timed after the warm-up steps.</summary>
    public int TrainSteps { get; init; } = 20;
    public int TrainWarmupSteps { get; init; } = 3;
    /// <summary>Images predicted (timed) after the warm-up images; each is a synthetic crop-size image.</summary>
    public int InferImages { get; init; } = 20;
    public int InferWarmupImages { get; init; } = 2;
    /// <summary>Inference scales (default: 1 only, so the figure is comparable between presets).</summary>
    public IReadOnlyList<double> InferScales { get; init; } = [1.0];
    public bool InferFlip { get; init; } = true;
    /// <summary>libtorch intra-op threads; 0 leaves the current setting.</summary>
    public int Threads { get; init; }
    /// <summary>Side of the square GEMM that sets the ceiling (1024).</summary>
    public int GemmSize { get; init; } = 1024;
    public int GemmRepeats { get; init; } = 9;
    public long Seed { get; init; }
}

/// <summary>Figures of <c>weakseg bench seg</c> (JSON keys in snake_case).</summary>
public sealed record SegmentationBenchmarkReport
{
    /// <summary>The preset (or caller's) name of the settings.</summary>
    public string Model { get; init; } = "";
    /// <summary>The timed network: segmenter, deeplab-largefov or deeplab-aspp.</summary>
    public string Network { get; init; } = "";
    public int CropSize { get; init; }
    public int BatchSize { get; init; }
    public int TrainSteps { get; init; }
    public int Threads { get; init; }
    /// <summary>Training images/s over the timed steps (the shared Trainer: forward, the config's loss, backward, optimizer step).</summary>
    public double TrainImagesPerS { get; init; }
    /// <summary>Predicted images/s (crop-size images, <see cref="InferScales"/>, flip as set; no CRF).</summary>
    public double InferImagesPerS { get; init; }
    public double[] InferScales { get; init; } = [];
    public bool InferFlip { get; init; }
    public double TrainFlopsPerImage { get; init; }
    public double InferFlopsPerImage { get; init; }
    /// <summary>train images/s × train FLOPs per image / 1e9.</summary>
    public double TrainGflops { get; init; }
    public double InferGflops { get; init; }
    /// <summary>The GemmSize³ float32 matmul ceiling.</summary>
    public double GemmGflops { get; init; }
    /// <summary>Training GFLOP/s ÷ GEMM GFLOP/s.</summary>
    public double GemmRatio { get; init; }
    /// <summary>Inference GFLOP/s ÷ GEMM GFLOP/s.</summary>
    public double InferGemmRatio { get; init; }
    /// <summary>Peak resident memory of the process (VmHWM) at the end, MiB.</summary>
    public double PeakRssMb { get; init; }
    /// <summary>1-minute load average at the start and at the end (Linux; −1 elsewhere): other processes share the cores.</summary>
    public double LoadAverageStart { get; init; }
    public double LoadAverageEnd { get; init; }

    public string ToJson() => IO.WeakSegJson.Serialize(this);
}

/// <summary>Training and inference throughput of a retraining network (Segmenter or DeepLab), relative to the machine's GEMM ceiling.</summary>
public static class SegmentationBenchmark
{
    public static SegmentationBenchmarkReport Run(SegmentationBenchmarkOptions options, string modelName = "custom", IProgress<ProgressUpdate>? progress = null)
    {
        if (options.TrainSteps < 1 || options.TrainWarmupSteps < 0 || options.InferImages < 1 || options.InferWarmupImages < 0)
            throw new WeakSegException("bench seg: steps and images must be ≥ 1 (warm-ups ≥ 0)");
        if (options.InferScales.Count == 0 || options.InferScales.Any(s => !(s > 0) || s > 8)) throw new WeakSegException("bench seg: scales must be in (0, 8]");
        double loadStart = LoadAverage();
        var device = TorchRuntime.Initialize("cpu", options.Threads);
        int total = options.TrainWarmupSteps + options.TrainSteps;
        var config = options.Config with { Steps = total, CheckpointEvery = total, LogEvery = total };
        config.EnsureValid();
        long units = total + options.InferWarmupImages + options.InferImages, done = 0;
        progress?.Report(new ProgressUpdate(0, units, "GEMM ceiling"));
        var gemm = GemmCeiling.Measure(options.GemmSize, warmup: 2, repeats: options.GemmRepeats);

        TorchRuntime.Seed(options.Seed);
        using var model = SegmentationNetwork.Create(config);
        var runDir = Path.Combine(Path.GetTempPath(), "weakseg-bench-seg-" + Guid.NewGuid().ToString("N"));
        double? warmEnd = null, lastEnd = null;
        try
        {
            var trainer = new Trainer(config.ToTrainerOptions(options.Seed, "cpu", options.Threads), runDir)
            {
                StepCompleted = r =>
                {
                    if (r.Step == options.TrainWarmupSteps) warmEnd = r.Seconds;
                    if (r.Step == total) lastEnd = r.Seconds;
                    progress?.Report(new ProgressUpdate(++done, units, "training"));
                },
            };
            trainer.Run(new SegmentationTrainable(model), SyntheticBatches(config, options.Seed));
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);
        }
        double trainSeconds = lastEnd!.Value - (warmEnd ?? 0);
        double trainRate = (double)options.TrainSteps * config.BatchSize / Math.Max(1e-9, trainSeconds);

        var predictor = new SegmentationPredictor(model, device);
        var image = SyntheticImage(config.CropSize, options.Seed);
        var inferOptions = new SegmentationInferenceOptions { Scales = options.InferScales, Flip = options.InferFlip };
        for (int i = 0; i < options.InferWarmupImages; i++) { predictor.Predict(image, inferOptions); progress?.Report(new ProgressUpdate(++done, units, "inference")); }
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < options.InferImages; i++) { predictor.Predict(image, inferOptions); progress?.Report(new ProgressUpdate(++done, units, "inference")); }
        double inferRate = options.InferImages / Math.Max(1e-9, clock.Elapsed.TotalSeconds);

        double trainFlops = SegmentationFlops.TrainPerImage(config);
        double inferFlops = SegmentationFlops.InferPerImage(config, config.CropSize, config.CropSize, options.InferScales, options.InferFlip);
        var train = TrainThroughput.Compute(trainRate, trainFlops, gemm.Gflops);
        var infer = TrainThroughput.Compute(inferRate, inferFlops, gemm.Gflops);
        return new SegmentationBenchmarkReport
        {
            Model = modelName, Network = SegmentationModels.Name(config.Model), CropSize = config.CropSize, BatchSize = config.BatchSize, TrainSteps = options.TrainSteps, Threads = torch.get_num_threads(),
            TrainImagesPerS = trainRate, InferImagesPerS = inferRate, InferScales = options.InferScales.ToArray(), InferFlip = options.InferFlip,
            TrainFlopsPerImage = trainFlops, InferFlopsPerImage = inferFlops, TrainGflops = train.AchievedGflops, InferGflops = infer.AchievedGflops,
            GemmGflops = gemm.Gflops, GemmRatio = train.FractionOfGemm, InferGemmRatio = infer.FractionOfGemm,
            PeakRssMb = ProcessMemory.Read().PeakRssMiB, LoadAverageStart = loadStart, LoadAverageEnd = LoadAverage(),
        };
    }

    /// <summary>Endless deterministic batches: N(0,1) images and masks of random 8×8-pixel blocks over the K + 1 classes (batch s from seed + s).</summary>
    static IBatchStream SyntheticBatches(SegmentationConfig config, long seed) => new DelegateBatchStream(start => Stream(config, seed, start));

    static IEnumerable<TrainBatch> Stream(SegmentationConfig config, long seed, long start)
    {
        int b = config.BatchSize, size = config.CropSize, blocks = (size + 7) / 8;
        for (long s = start; ; s++)
        {
            using var generator = new Generator(unchecked((ulong)(seed * 1_000_003 + s)));
            var images = torch.randn(new long[] { b, 3, size, size }, generator: generator);
            var masks = torch.randint(0, config.NumClasses + 1, new long[] { b, blocks, blocks }, generator: generator, dtype: ScalarType.Int64)
                .repeat_interleave(8, 1).repeat_interleave(8, 2).narrow(1, 0, size).narrow(2, 0, size).contiguous();
            var labels = torch.zeros(b, config.NumClasses);
            yield return new TrainBatch(images, labels, masks);
        }
    }

    static RgbImage SyntheticImage(int size, long seed)
    {
        var image = new RgbImage(size, size);
        new Random(unchecked((int)seed) ^ 0x5EED).NextBytes(image.Pixels);
        return image;
    }

    /// <summary>1-minute load average from /proc/loadavg, or −1.</summary>
    public static double LoadAverage()
    {
        try
        {
            return File.Exists("/proc/loadavg")
                ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture)
                : -1;
        }
        catch (Exception e) when (e is IOException or FormatException) { return -1; }
    }
}

