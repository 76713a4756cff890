using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Models.Vit;
using WeakSeg.Runtime;
using static TorchSharp.torch;

namespace WeakSeg.Pipelines;

/// <summary>What <see cref="PatchAffinityInspection.Run"/> measures.</summary>
public sealed record PatchAffinityRequest
{
    /// <summary>Run directory of a class-token method (`weakseg train`, or a pipeline's cam/run).</summary>
    public required string RunDirectory { get; init; }

    /// <summary>Dataset root; null = the run's training data.</summary>
    public string? DataRoot { get; init; }

    public string Split { get; init; } = "train";

    /// <summary>The first N images of the split; 0 = all (negative: refused).</summary>
    public int Images { get; init; } = 100;

    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
}

/// <summary>
/// <see cref="PatchAffinityStatistics"/> of a trained run: each image at its own size (scale 1, no flip), the network's ViT attention
/// of every layer averaged over heads and summed over layers (the affinity MCTformer-type refinement multiplies the map by), compared
/// with the mask at the token grid. Reads pixel labels: a diagnostic of why a refinement helps or hurts, not a weak step.
/// </summary>
public static class PatchAffinityInspection
{
    public static PatchAffinityStatistics Run(PatchAffinityRequest request, IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        if (request.Images < 0) throw new WeakSegException($"the number of images must be 0 (all) or positive (got {request.Images})");
        var device = TorchRuntime.Initialize(request.Device, request.Threads);
        using var method = TrainPipeline.LoadTrained(request.RunDirectory, out var config);
        var vit = method.Model as VisionTransformer ?? method.Model.modules().OfType<VisionTransformer>().FirstOrDefault()
            ?? throw WeakSegException.ForFile(request.RunDirectory, $"method '{method.Name}' has no class-token ViT whose patch attention could be inspected");
        method.Model.to(device);
        method.Model.eval();
        var dataset = TrainPipeline.OpenDataset(request.RunDirectory, config, request.DataRoot, request.Split);
        int count = request.Images <= 0 ? dataset.Samples.Count : Math.Min(request.Images, dataset.Samples.Count);
        var transform = new EvalTransform();
        var accumulator = new PatchAffinityAccumulator();
        using var noGrad = torch.no_grad();
        for (int i = 0; i < count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var sample = dataset.Samples[i];
            var mask = dataset.LoadMask(i) ?? throw WeakSegException.ForFile(sample.ImagePath, "has no ground-truth mask (the inspection compares the attention with the masks)");
            using var scope = torch.NewDisposeScope();
            var (chw, h, w) = transform.Apply(dataset.LoadImage(i));
            var output = vit.call(torch.tensor(chw, [1, 3, h, w], device: device));
            int classTokens = output.NumClassTokens, gridHeight = output.GridHeight, gridWidth = output.GridWidth, n = gridHeight * gridWidth;
            var summed = AttentionMaps.HeadMean(output.Attentions).sum(dim: 0)[0];                  // [T, T], Σ over layers
            var patchRows = summed.narrow(0, classTokens, n);
            var affinity = patchRows.narrow(1, classTokens, n).contiguous().cpu().data<float>().ToArray();
            var rowTotals = patchRows.sum(dim: 1).cpu().data<float>().ToArray();
            accumulator.Add(affinity, rowTotals, PatchAffinityAccumulator.PatchLabels(mask, gridHeight, gridWidth), gridWidth);
            progress?.Report(new ProgressUpdate(i + 1, count));
        }
        return accumulator.Result();
    }
}
