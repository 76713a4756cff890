using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Models.Vit;

/// <summary>
/// Localization maps read from class-token ViT attention (pure functions): head mean, class-to-patch maps, patch affinity and
/// affinity refinement. Used by MCTformer, the vit-cls baseline and later class-token methods.
/// </summary>
public static class AttentionMaps
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
}
