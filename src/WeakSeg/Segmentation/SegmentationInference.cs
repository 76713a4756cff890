using WeakSeg.Runtime;
using System.Diagnostics;
using WeakSeg.Data;
using WeakSeg.Refinement;

namespace WeakSeg.Segmentation;

/// <summary>What <see cref="SegmentationInference.Run"/> did.</summary>
/// <param name="Written">predictions written by this call</param>
/// <param name="Skipped">predictions that already existed (kept)</param>
/// <param name="ImagesPerSecond">throughput over the written images</param>
public sealed record SegmentationInferenceSummary(int Written, int Skipped, double Seconds, double ImagesPerSecond);

/// <summary>What <c>weakseg seg-infer</c> predicts: a split with a trained retraining run.</summary>
public sealed record SegmentationInferRequest
{
    /// <summary>Run directory written by <see cref="SegmentationRun.Train"/>.</summary>
    public required string RunDirectory { get; init; }
    public required string OutDirectory { get; init; }
    public string Split { get; init; } = "val";
    /// <summary>Dataset root; null = the one the run was trained on. Its class count must be the run's.</summary>
    public string? DataRoot { get; init; }
    /// <summary>Inference scales; null = the run's <see cref="SegmentationConfig.InferenceScales"/>.</summary>
    public IReadOnlyList<double>? Scales { get; init; }
    /// <summary>Without the flipped pass even when the run's configuration has one.</summary>
    public bool NoFlip { get; init; }
    public bool Overwrite { get; init; }
    /// <summary>Dense CRF on the averaged probabilities before the argmax; null = none.</summary>
    public DenseCrfConfig? Crf { get; init; }
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    public WorkShard? Shard { get; init; }
}

/// <summary>Predicts a split and writes VOC-palette label PNGs <c>OUT/NAME.png</c> (atomic writes; existing files are skipped unless Overwrite).</summary>
public static class SegmentationInference
{
    /// <summary>Loads the run (model-final.bin, else its latest checkpoint), checks that the data has the run's class count, and predicts
    /// the split with the run's inference settings unless the request overrides them. Returns the summary and the weights used.</summary>
    public static (SegmentationInferenceSummary Summary, string WeightsPath) Run(SegmentationInferRequest request, IProgress<ProgressUpdate>? progress = null)
    {
        var device = TorchRuntime.Initialize(request.Device, request.Threads);
        var (model, info, weights) = SegmentationRun.Load(request.RunDirectory, device);
        using var _ = model;
        var dataset = VocDataset.Open(request.DataRoot ?? info.DataRoot, request.Split);
        if (dataset.NumClasses != info.Config.NumClasses)
            throw new WeakSegException($"{dataset.Root} has {dataset.NumClasses} foreground classes but the run was trained with {info.Config.NumClasses}");
        var options = new SegmentationInferenceOptions
        {
            Scales = request.Scales ?? info.Config.InferenceScales,
            Flip = !request.NoFlip && info.Config.InferenceFlip,
            Overwrite = request.Overwrite,
            Refine = request.Crf is null ? null : SegmentationRefiners.DenseCrf(request.Crf),
        };
        var summary = Run(new SegmentationPredictor(model, device), dataset.Samples, request.OutDirectory, options, progress, shard: request.Shard);
        return (summary, weights);
    }

    public static SegmentationInferenceSummary Run(ILabelPredictor predictor, IReadOnlyList<VocSample> samples, string outDir,
        SegmentationInferenceOptions options, IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default,
        WorkShard? shard = null)
    {
        shard ??= WorkShard.All;
        samples = shard.Select(samples, s => s.Name);
        var dir = Path.GetFullPath(outDir);
        if (File.Exists(dir)) throw WeakSegException.ForFile(dir, "output path is a file, expected a directory");
        Directory.CreateDirectory(dir);
        var clock = new Stopwatch();
        var job = new ImageDirectoryJob { Names = samples.Select(s => s.Name).ToList(), IsDone = name => File.Exists(Path.Combine(dir, name + ".png")), Overwrite = options.Overwrite };
        var summary = job.Run(i =>
        {
            clock.Start();
            var image = ImageCodec.Load(samples[i].ImagePath);
            LabelPng.Write(Path.Combine(dir, samples[i].Name + ".png"), predictor.Predict(image, options));
            clock.Stop();
        }, progress, cancellationToken);
        int written = summary.Written;
        double seconds = clock.Elapsed.TotalSeconds;
        double imagesPerSecond = written / Math.Max(1e-9, seconds);
        Span<long> counts = [summary.Written, summary.Skipped];
        shard.SumOverRanks(counts);
        Span<double> rates = [imagesPerSecond];                   // the job's rate: the ranks' rates add up
        shard.Group?.AllreduceSum(rates);
        return new SegmentationInferenceSummary((int)counts[0], (int)counts[1], seconds, rates[0]);
    }
}
