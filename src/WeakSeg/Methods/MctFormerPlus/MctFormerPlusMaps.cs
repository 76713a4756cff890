using TorchSharp;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormerPlus;

/// <summary>MCTformer+ localization maps (pure functions). The generic attention pieces live in <see cref="AttentionMaps"/>.</summary>
public static class MctFormerPlusMaps
{
    /// <summary>Class-to-patch map averaged (not summed, as MCTformer-V2) over the last <paramref name="lastLayers"/> layers.
    /// headMean [L, B, T, T] → [B, C, h, w].</summary>
    public static Tensor MeanClassToPatch(Tensor headMean, int numClassTokens, int lastLayers, int gridHeight, int gridWidth)
    {
        using var summed = AttentionMaps.ClassToPatch(headMean, numClassTokens, lastLayers, gridHeight, gridWidth);
        using var layers = ((double)lastLayers).ToScalar();
        return summed.div(layers);
    }

    /// <summary>Fused map: √(classToPatch ⊙ ReLU(PatchCAM)) (the geometric mean; PatchCAM detached). [B, C, h, w] × [B, C, h, w] → [B, C, h, w].</summary>
    public static Tensor FuseWithPatchCam(Tensor classToPatch, Tensor patchCam)
    {
        using var relu = patchCam.detach().relu();
        using var product = classToPatch.mul(relu);
        return product.sqrt();
    }

    /// <summary>All maps of one forward pass (detached from autograd by the caller's no_grad, if any).</summary>
    public static MctFormerPlusLocalization Localize(MctFormerPlusOutput output, int lastLayers)
    {
        using var scope = torch.NewDisposeScope();
        var backbone = output.Backbone;
        int c = backbone.NumClassTokens;
        var headMean = AttentionMaps.HeadMean(backbone.Attentions);                                   // [L, B, T, T]
        var classToPatch = MeanClassToPatch(headMean, c, lastLayers, backbone.GridHeight, backbone.GridWidth);
        var patchCam = output.PatchCam.detach().relu();
        var fused = FuseWithPatchCam(classToPatch, output.PatchCam);
        var affinity = AttentionMaps.PatchAffinity(headMean, c);                                      // Σ over ALL layers
        var refined = AttentionMaps.Refine(affinity, fused);
        var result = new MctFormerPlusLocalization(classToPatch, patchCam, fused, affinity, refined);
        foreach (var t in result.Owned) t.MoveToOuterDisposeScope();
        return result;
    }
}

/// <summary>MCTformer+ maps on the patch grid (official attention types <c>mct</c>, <c>patchcam</c>, <c>fused</c>, and the
/// patch-affinity refinement).</summary>
/// <param name="ClassToPatch">[B, C, h, w] class-to-patch attention averaged over the last layers.</param>
/// <param name="PatchCam">[B, C, h, w] ReLU(PatchCAM).</param>
/// <param name="Fused">[B, C, h, w] √(ClassToPatch ⊙ PatchCam).</param>
/// <param name="PatchAffinity">[B, N, N] patch-to-patch attention summed over all layers.</param>
/// <param name="Refined">[B, C, h, w] PatchAffinity · Fused.</param>
public sealed record MctFormerPlusLocalization(Tensor ClassToPatch, Tensor PatchCam, Tensor Fused, Tensor PatchAffinity, Tensor Refined) : IDisposable
{
    internal IEnumerable<Tensor> Owned => [ClassToPatch, PatchCam, Fused, PatchAffinity, Refined];

    /// <summary>The map of <paramref name="kind"/>.</summary>
    public Tensor Get(LocalizationMapKind kind) => kind switch
    {
        LocalizationMapKind.Refined => Refined,
        LocalizationMapKind.Fused => Fused,
        LocalizationMapKind.ClassToPatch => ClassToPatch,
        LocalizationMapKind.PatchCam => PatchCam,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public void Dispose()
    {
        foreach (var t in Owned) t.Dispose();
    }
}
