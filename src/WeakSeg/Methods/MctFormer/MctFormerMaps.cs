using TorchSharp;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormer;

/// <summary>MCTformer localization maps (pure functions). The generic attention pieces live in <see cref="AttentionMaps"/>.</summary>
public static class MctFormerMaps
{
    /// <summary>V2 fused map: classToPatch ⊙ ReLU(PatchCAM), PatchCAM detached. [B, C, h, w] × [B, C, h, w] → [B, C, h, w].</summary>
    public static Tensor FuseWithPatchCam(Tensor classToPatch, Tensor patchCam)
    {
        using var relu = patchCam.detach().relu();
        return classToPatch.mul(relu);
    }

    /// <summary>All maps of one forward pass (detached from autograd by the caller's no_grad, if any).</summary>
    public static MctFormerLocalization Localize(MctFormerOutput output, int lastLayers)
    {
        using var scope = torch.NewDisposeScope();
        var backbone = output.Backbone;
        int c = backbone.NumClassTokens;
        var headMean = AttentionMaps.HeadMean(backbone.Attentions);
        var classToPatch = AttentionMaps.ClassToPatch(headMean, c, lastLayers, backbone.GridHeight, backbone.GridWidth);
        var maps = output.PatchCam is null ? classToPatch : FuseWithPatchCam(classToPatch, output.PatchCam);
        var affinity = AttentionMaps.PatchAffinity(headMean, c);
        var refined = AttentionMaps.Refine(affinity, maps);
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
