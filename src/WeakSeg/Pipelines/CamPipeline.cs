using System.Diagnostics;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Runtime;

namespace WeakSeg.Pipelines;

/// <summary>What <see cref="CamPipeline.Run"/> computes.</summary>
public sealed record CamRequest
{
    public required string RunDirectory { get; init; }
    public required string OutDirectory { get; init; }
    public string Split { get; init; } = "train";

    /// <summary>Dataset root; null = the run's training data.</summary>
    public string? DataRoot { get; init; }

    public LocalizationOptions Localization { get; init; } = new();

    /// <summary>Store maps as float16.</summary>
    public bool Float16 { get; init; }

    /// <summary>Weights to load; null = the run's model-final.bin or latest checkpoint.</summary>
    public string? Weights { get; init; }

    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
}

public sealed record CamSummary(int Images, int Written, int Skipped, string Method, double Seconds);

/// <summary>
/// Localization maps of every image of a split (CAM protocol: multi-scale + flip, only the image's ground-truth classes,
/// per-class max normalisation), one <see cref="CamMapFile"/> pair per image. Existing pairs are skipped, so it resumes.
/// </summary>
public static class CamPipeline
{
    public static CamSummary Run(CamRequest request, IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        request.Localization.EnsureValid();
        var device = TorchRuntime.Initialize(request.Device, request.Threads);
        using var method = TrainPipeline.LoadTrained(request.RunDirectory, out var config, request.Weights);
        config.Recipe.Factory.Maps.Require(request.Localization.MapKind, method.Name);
        method.Model.to(device);
        var dataset = VocDataset.Open(request.DataRoot ?? config.DataRoot, request.Split);
        if (dataset.NumClasses != config.NumClasses)
            throw WeakSegException.ForFile(dataset.Root, $"has {dataset.NumClasses} classes but the run was trained with {config.NumClasses} ({RunConfig.PathIn(request.RunDirectory)})");
        Directory.CreateDirectory(request.OutDirectory);
        var transform = new EvalTransform();
        var clock = Stopwatch.StartNew();
        int written = 0, skipped = 0;
        progress?.Report(new ProgressUpdate(0, dataset.Samples.Count));
        for (int i = 0; i < dataset.Samples.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var sample = dataset.Samples[i];
            if (CamMapFile.Exists(request.OutDirectory, sample.Name)) skipped++;
            else
            {
                using var scope = torch.NewDisposeScope();
                var image = dataset.LoadImage(i);
                var (chw, h, w) = transform.Apply(image);
                var input = torch.tensor(chw, [3, h, w], device: device);
                float[] values = [];
                if (sample.Classes.Length > 0)
                {
                    var maps = method.Localize(input, sample.Classes, request.Localization);           // [K', H, W]
                    values = maps.cpu().data<float>().ToArray();
                }
                CamMapFile.Write(request.OutDirectory, sample.Name, values, sample.Classes, h, w, request.Float16);
                written++;
            }
            progress?.Report(new ProgressUpdate(i + 1, dataset.Samples.Count));
        }
        return new CamSummary(dataset.Samples.Count, written, skipped, method.Name, clock.Elapsed.TotalSeconds);
    }
}
