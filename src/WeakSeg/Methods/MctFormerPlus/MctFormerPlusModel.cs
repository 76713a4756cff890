using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.MctFormerPlus;

/// <summary>What <see cref="MctFormerPlusModel.Forward"/> returns. Owns its tensors.</summary>
/// <param name="Backbone">Final tokens (no final norm), per-block attention and per-block class tokens.</param>
/// <param name="ClassLogits">[B, C] mean over D of each final class token.</param>
/// <param name="PatchCam">[B, C, h, w] <c>head</c> = Conv2d(D, C, 3, padding 1) on the patch grid.</param>
/// <param name="PatchLogits">[B, C] global weighted ranking pooling of <paramref name="PatchCam"/>.</param>
public sealed record MctFormerPlusOutput(VitOutput Backbone, Tensor ClassLogits, Tensor PatchCam, Tensor PatchLogits) : IDisposable
{
    /// <summary>The class tokens leaving each block, stacked: [L, B, C, D].</summary>
    public Tensor StackedClassTokens() => torch.stack(Backbone.BlockClassTokens, 0);

    public MctFormerPlusOutput MoveToOuterDisposeScope()
    {
        Backbone.MoveToOuterDisposeScope();
        ClassLogits.MoveToOuterDisposeScope();
        PatchCam.MoveToOuterDisposeScope();
        PatchLogits.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Backbone.Dispose();
        ClassLogits.Dispose();
        PatchCam.Dispose();
        PatchLogits.Dispose();
    }
}

/// <summary>
/// MCTformer+: a ViT with one class token per class whose class tokens and patches have separate position embeddings
/// (<c>pos_embed_cls</c>, <c>pos_embed_pat</c>; patches resized bicubically to other grids). Class logits = mean over D of the final
/// class tokens; <c>head</c> = Conv2d(D, C, 3, padding 1) on the patch grid (PatchCAM) with logits by global weighted ranking
/// pooling. No final norm is applied (the <c>norm</c> weights exist only for checkpoint compatibility).
/// </summary>
public sealed class MctFormerPlusModel : VisionTransformer
{
    readonly Conv2d head;

    public MctFormerPlusModel(MctFormerPlusConfig config) : base(ValidatedBackbone(config), "MctFormerPlus")
    {
        MethodConfig = config;
        head = Conv2d(config.Backbone.EmbedDim, config.NumClasses, kernel_size: 3, stride: 1, padding: 1);
        register_module(nameof(head), head);
    }

    static VitConfig ValidatedBackbone(MctFormerPlusConfig config)
    {
        config.EnsureValid();
        return config.BackboneConfig;
    }

    public MctFormerPlusConfig MethodConfig { get; }

    /// <summary>Backbone tokens without the final norm (as MCTformer+'s forward).</summary>
    public override VitOutput forward(Tensor images) => ForwardBlocks(images);

    /// <summary>Full forward: tokens, attention, per-block class tokens, class logits, PatchCAM and its GWRP logits.</summary>
    public MctFormerPlusOutput Forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var backbone = ForwardBlocks(images);
        var classLogits = backbone.ClassTokens.mean(new long[] { -1 });                                          // [B, C]
        var patchCam = head.call(backbone.PatchGrid());                                                            // [B, C, h, w]
        var patchLogits = GlobalWeightedRankingPooling(patchCam, MethodConfig.EffectiveGwrpDecay);                  // [B, C]
        return new MctFormerPlusOutput(backbone, classLogits, patchCam, patchLogits).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Global weighted ranking pooling: per map, the N scores sorted in descending order s(1) ≥ … ≥ s(N) are averaged with weights
    /// d^(j−1): Σ d^(j−1) s(j) / Σ d^(j−1) (weights in the maps' dtype, as the official torch.logspace). d = 1 is average pooling;
    /// d → 0 is max pooling. maps [B, C, h, w] → [B, C].
    /// </summary>
    public static Tensor GlobalWeightedRankingPooling(Tensor maps, double decay)
    {
        if (!(decay > 0 && decay <= 1)) throw new WeakSegException($"GWRP decay must be in (0, 1] (got {decay})");
        using var scope = torch.NewDisposeScope();
        var flat = maps.flatten(2);                                                                   // [B, C, N]
        long n = flat.shape[2];
        var (sorted, _) = flat.sort(dim: -1, descending: true);
        var weights = torch.tensor(Enumerable.Range(0, (int)n).Select(j => Math.Pow(decay, j)).ToArray())
            .to(flat.dtype, flat.device);                                                            // [N]
        return sorted.mul(weights).sum(new long[] { -1 }).div(weights.sum()).MoveToOuterDisposeScope();
    }
}
