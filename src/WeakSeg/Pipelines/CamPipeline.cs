using System.Diagnostics;
using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.IO;
using WeakSeg.Methods;
using WeakSeg.Runtime;
using static TorchSharp.torch;

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

    /// <summary>The images this process maps (every image by default; an MPI rank's or a --shard job's share).</summary>
    public WorkShard Shard { get; init; } = WorkShard.All;
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
        var dataset = TrainPipeline.OpenDataset(request.RunDirectory, config, request.DataRoot, request.Split);
        // Every image still to map must fit at the largest scale: checked from the headers before the output folder is made, so a
        // refusal leaves nothing behind (and comes before any map, not after hours of them).
        foreach (var sample in dataset.Samples)
            if (sample.Classes.Length > 0 && !CamMapFile.Exists(request.OutDirectory, sample.Name))
            {
                var (width, height) = ImageCodec.ReadSize(sample.ImagePath);
                if (method.Backbone is { } vit) EnsureFitsInMemory(vit, sample.Name, height, width, request.Localization, MemoryBudgetBytes);
            }
        var shard = request.Shard;
        using var folderLock = ShardedOutputs.Claim(shard, request.OutDirectory, () => OutputSettings.Claim(request.OutDirectory, "maps",
            Settings(request, config, dataset), dataset.Samples.Count(sample => CamMapFile.Exists(request.OutDirectory, sample.Name))));
        var transform = new EvalTransform();
        var clock = Stopwatch.StartNew();
        var mine = Enumerable.Range(0, dataset.Samples.Count).Where(i => shard.Contains(dataset.Samples[i].Name)).ToList();
        var job = new ImageDirectoryJob { Names = mine.Select(i => dataset.Samples[i].Name).ToList(), IsDone = name => CamMapFile.Exists(request.OutDirectory, name) };
        var summary = job.Run(done =>
        {
            int i = mine[done];
            var sample = dataset.Samples[i];
            var image = dataset.LoadImage(i);
            var (chw, h, w) = transform.Apply(image);
            var input = torch.tensor(chw, [3, h, w], device: device);
            float[] values = [];
            if (sample.Classes.Length > 0)
            {
                Tensor maps;
                try { maps = method.Localize(input, sample.Classes, request.Localization); }        // [K', H, W]
                catch (Exception e) when (IsAllocationFailure(e))
                {
                    throw new WeakSegException($"image '{sample.Name}' ({w}x{h}): out of memory computing its maps at scales " +
                        $"{string.Join(",", request.Localization.Scales)} ({FirstLine(e.Message)}); use smaller --scales or smaller images");
                }
                values = maps.cpu().data<float>().ToArray();
            }
            CamMapFile.Write(request.OutDirectory, sample.Name, values, sample.Classes, h, w, request.Float16);
        }, progress, cancellationToken);
        Span<long> counts = [summary.Images, summary.Written, summary.Skipped];
        shard.SumOverRanks(counts);
        return new CamSummary((int)counts[0], (int)counts[1], (int)counts[2], method.Name, clock.Elapsed.TotalSeconds);
    }

    /// <summary>What the maps depend on, recorded beside them (<see cref="OutputSettings"/>): the weights (path and CRC-32, so a
    /// retrained run is a change), the data, split, map kind, scales, flip and storage type. Threads and device are left out.</summary>
    public static JsonObject Settings(CamRequest request, RunConfig config, VocDataset dataset)
    {
        var weights = Path.GetFullPath(request.Weights ?? new Training.RunDirectory(request.RunDirectory).ResolveWeights());
        return new JsonObject
        {
            ["outputs"] = "maps",
            ["run"] = Path.GetFullPath(request.RunDirectory),
            ["weights"] = weights,
            ["weights_crc32"] = Training.CheckpointStore.Crc32Of(weights),
            ["data"] = dataset.Root,
            ["split"] = dataset.Split,
            ["num_classes"] = config.NumClasses,
            ["map"] = LocalizationMapKindNames.Name(request.Localization.MapKind),
            ["scales"] = new JsonArray(request.Localization.Scales.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
            ["flip"] = request.Localization.Flip,
            ["float16"] = request.Float16,
        };
    }

    /// <summary>Memory the maps of one image may need: the memory available to the process (physical memory or its limit).</summary>
    public static long MemoryBudgetBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Refuses an image whose largest scale cannot fit: the forward pass holds, for each view (flip doubles them) and each layer, an
    /// attention matrix of heads × T² floats over the T tokens of the scaled image (sides rounded to the patch size, as
    /// <see cref="MultiScaleCam"/> does). That lower bound is checked against <paramref name="budgetBytes"/> before libtorch allocates,
    /// because an allocation failure inside libtorch can end the process instead of raising an error.
    /// </summary>
    public static void EnsureFitsInMemory(Models.Vit.VitConfig backbone, string imageName, int height, int width, LocalizationOptions options, long budgetBytes)
    {
        double scale = options.Scales.Max();
        long p = backbone.PatchSize;
        long h = Math.Max(p, (long)Math.Round(height * scale / p) * p), w = Math.Max(p, (long)Math.Round(width * scale / p) * p);
        double tokens = (double)(h / p) * (w / p) + 1;
        double bytes = (options.Flip ? 2 : 1) * (double)backbone.Depth * backbone.NumHeads * tokens * tokens * sizeof(float);
        if (bytes > budgetBytes)
            throw new WeakSegException($"image '{imageName}' ({width}x{height}) at scale {scale} is {w}x{h} pixels, {tokens - 1:0} patches: " +
                $"its attention maps alone need {bytes / (1L << 30):0.#} GiB, more than the {budgetBytes / (double)(1L << 30):0.#} GiB of memory; " +
                "use smaller --scales (or smaller images)");
    }

    static bool IsAllocationFailure(Exception e) => e is OutOfMemoryException || e is InsufficientExecutionStackException ||
        e.Message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase) ||
        e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase);

    static string FirstLine(string message) => message.Split('\n')[0].Trim();
}
