using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormer;

/// <summary>MCTformer localization maps from transformer attention (pure functions, no parameters).</summary>
public static class MctFormerMaps
{
    /// <summary>Per-block attentions [B, H, T, T] → head-mean attention stacked over layers [L, B, T, T].</summary>
    public static Tensor HeadMean(IReadOnlyList<Tensor> attentions)
    {
        using var stacked = torch.stack(attentions, 0);   // [L, B, H, T, T]
        return stacked.mean(new long[] { 2 });
    }

    /// <summary>
    /// Class-to-patch map: Σ over the last <paramref name="lastLayers"/> layers of A[:, :C, C:], reshaped to the grid.
    /// headMean [L, B, T, T] → [B, C, h, w].
    /// </summary>
    public static Tensor ClassToPatch(Tensor headMean, int numClassTokens, int lastLayers, int gridHeight, int gridWidth)
    {
        long layers = headMean.shape[0];
        if (lastLayers < 1 || lastLayers > layers) throw new WeakSegException($"lastLayers must be in [1, {layers}] (got {lastLayers})");
        long tokens = headMean.shape[2];
        if (tokens != numClassTokens + (long)gridHeight * gridWidth)
            throw new WeakSegException($"attention has {tokens} tokens; expected {numClassTokens} class tokens + {gridHeight}×{gridWidth} patches");
        using var scope = torch.NewDisposeScope();
        var summed = headMean.narrow(0, layers - lastLayers, lastLayers).sum(dim: 0);          // [B, T, T]
        var classToPatch = summed.narrow(1, 0, numClassTokens).narrow(2, numClassTokens, tokens - numClassTokens);  // [B, C, N]
        return classToPatch.reshape(headMean.shape[1], numClassTokens, gridHeight, gridWidth).MoveToOuterDisposeScope();
    }

    /// <summary>V2 fused map: classToPatch ⊙ ReLU(PatchCAM), PatchCAM detached. [B, C, h, w] × [B, C, h, w] → [B, C, h, w].</summary>
    public static Tensor FuseWithPatchCam(Tensor classToPatch, Tensor patchCam)
    {
        using var relu = patchCam.detach().relu();
        return classToPatch.mul(relu);
    }

    /// <summary>Patch-to-patch affinity: Σ over all layers of A[:, C:, C:]. headMean [L, B, T, T] → [B, N, N].</summary>
    public static Tensor PatchAffinity(Tensor headMean, int numClassTokens)
    {
        long tokens = headMean.shape[2];
        using var summed = headMean.sum(dim: 0);                                                // [B, T, T]
        return summed.narrow(1, numClassTokens, tokens - numClassTokens).narrow(2, numClassTokens, tokens - numClassTokens).clone();
    }

    /// <summary>Refined map: affinity · map per class (map flattened to N×1). affinity [B, N, N], maps [B, C, h, w] → [B, C, h, w].</summary>
    public static Tensor Refine(Tensor affinity, Tensor maps)
    {
        using var scope = torch.NewDisposeScope();
        long b = maps.shape[0], c = maps.shape[1], h = maps.shape[2], w = maps.shape[3];
        if (affinity.shape[1] != h * w) throw new WeakSegException($"affinity is {affinity.shape[1]}×{affinity.shape[2]} but the maps have {h}×{w} patches");
        var flat = maps.reshape(b, c, h * w).transpose(1, 2);                               // [B, N, C]
        var refined = torch.matmul(affinity, flat).transpose(1, 2);                         // [B, C, N]
        return refined.reshape(b, c, h, w).MoveToOuterDisposeScope();
    }

    /// <summary>All maps of one forward pass (detached from autograd by the caller's no_grad, if any).</summary>
    public static MctFormerLocalization Localize(MctFormerOutput output, int lastLayers)
    {
        using var scope = torch.NewDisposeScope();
        var backbone = output.Backbone;
        int c = backbone.NumClassTokens;
        var headMean = HeadMean(backbone.Attentions);
        var classToPatch = ClassToPatch(headMean, c, lastLayers, backbone.GridHeight, backbone.GridWidth);
        var maps = output.PatchCam is null ? classToPatch : FuseWithPatchCam(classToPatch, output.PatchCam);
        var affinity = PatchAffinity(headMean, c);
        var refined = Refine(affinity, maps);
        var result = new MctFormerLocalization(classToPatch, maps, affinity, refined);
        result.ClassToPatch.MoveToOuterDisposeScope();
        if (!ReferenceEquals(maps, classToPatch)) result.Maps.MoveToOuterDisposeScope();
        result.PatchAffinity.MoveToOuterDisposeScope();
        result.Refined.MoveToOuterDisposeScope();
        return result;
    }
}

/// <summary>MCTformer maps on the patch grid.</summary>
/// <param name="ClassToPatch">[B, C, h, w] summed class-to-patch attention of the last layers.</param>
/// <param name="Maps">[B, C, h, w] V2: ClassToPatch ⊙ ReLU(PatchCAM); V1: same tensor as ClassToPatch.</param>
/// <param name="PatchAffinity">[B, N, N] patch-to-patch attention summed over all layers.</param>
/// <param name="Refined">[B, C, h, w] PatchAffinity · Maps.</param>
public sealed record MctFormerLocalization(Tensor ClassToPatch, Tensor Maps, Tensor PatchAffinity, Tensor Refined) : IDisposable
{
    public void Dispose()
    {
        ClassToPatch.Dispose();
        if (!ReferenceEquals(Maps, ClassToPatch)) Maps.Dispose();
        PatchAffinity.Dispose();
        Refined.Dispose();
    }
}
