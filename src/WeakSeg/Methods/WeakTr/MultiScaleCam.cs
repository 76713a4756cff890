using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.WeakTr;

/// <summary>
/// Multi-scale + flip accumulation of patch-grid maps, with the same conventions as <c>MctFormerInference.AccumulatedMaps</c>:
/// each scaled side is rounded to a multiple of the patch size (at least one patch), the image is resized bilinearly
/// (align_corners false), the maps are resized bilinearly back to the image size, flipped views are un-flipped, and all views
/// are summed. Method-independent: the map function decides what is accumulated. Candidate for a shared home (PseudoLabels).
/// </summary>
public static class MultiScaleCam
{
    /// <summary>
    /// Σ over scales (and flips) of <paramref name="mapsAtPatchGrid"/>(view) resized to the image. image [3, H, W] or [1, 3, H, W]
    /// → [C, H, W]. Runs under no_grad with <paramref name="model"/> in eval mode (its mode is restored afterwards).
    /// </summary>
    /// <param name="mapsAtPatchGrid">view [1, 3, h·p, w·p] → maps [1, C, h', w'] (any grid; resized to the image)</param>
    public static Tensor Accumulate(nn.Module model, int patchSize, Tensor image, IReadOnlyList<double> scales, bool flip,
        Func<Tensor, Tensor> mapsAtPatchGrid)
    {
        if (scales.Count == 0 || scales.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new WeakSegException("inference scales must be a non-empty list of positive numbers");
        using var scope = torch.NewDisposeScope();
        var batch = image.dim() == 3 ? image.unsqueeze(0) : image.alias();
        if (batch.dim() != 4 || batch.shape[0] != 1) throw new WeakSegException($"expected one image [3, H, W]; got [{string.Join(", ", image.shape)}]");
        long height = batch.shape[2], width = batch.shape[3];

        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            Tensor? sum = null;
            foreach (var scale in scales)
            {
                long h = Math.Max(patchSize, (long)Math.Round(height * scale / patchSize) * patchSize);
                long w = Math.Max(patchSize, (long)Math.Round(width * scale / patchSize) * patchSize);
                var scaled = h == height && w == width ? batch
                    : nn.functional.interpolate(batch, size: new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
                foreach (var flipped in flip ? new[] { false, true } : new[] { false })
                {
                    var view = flipped ? scaled.flip(3) : scaled;
                    var maps = mapsAtPatchGrid(view);                                                    // [1, C, h', w']
                    var full = nn.functional.interpolate(maps, size: new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false);
                    if (flipped) full = full.flip(3);
                    sum = sum is null ? full : sum + full;
                }
            }
            return sum!.squeeze(0).MoveToOuterDisposeScope();                                           // [C, H, W]
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }
}
