using TorchSharp;
using WeakSeg.Models;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Localization;

/// <summary>
/// Multi-scale + flip accumulation of patch-grid maps (the MCTformer/WeakTr CAM protocol), shared by every method:
/// each scaled side is rounded to a multiple of the patch size (at least one patch), the image is resized bilinearly
/// (align_corners false), the image and its horizontal flip go through the model as one batch of 2, the maps are resized
/// bilinearly back to the image size, the flipped view is un-flipped, and all views are summed. The map function decides
/// what is accumulated.
/// </summary>
public static class MultiScaleCam
{
    /// <summary>
    /// Σ over scales (and flips) of <paramref name="mapsAtPatchGrid"/>(view) resized to the image. image [3, H, W] or [1, 3, H, W]
    /// → [C, H, W]. Runs under no_grad with <paramref name="model"/> in eval mode (its mode is restored afterwards).
    /// </summary>
    /// <param name="mapsAtPatchGrid">views [V, 3, h·p, w·p] (V = 2 with flip: the image, then its flip) → maps [V, C, h', w'] (any grid; resized to the image)</param>
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
                var input = flip ? torch.cat(new[] { scaled, scaled.flip(3) }, 0) : scaled;
                var maps = mapsAtPatchGrid(input);                                                        // [V, C, h', w']
                var full = nn.functional.interpolate(maps, size: new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false);
                var view = flip ? StableScalars.Add(full.narrow(0, 0, 1), full.narrow(0, 1, 1).flip(3)) : full;
                sum = sum is null ? view : StableScalars.Add(sum, view);
            }
            return sum!.squeeze(0).MoveToOuterDisposeScope();                                           // [C, H, W]
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }
}
