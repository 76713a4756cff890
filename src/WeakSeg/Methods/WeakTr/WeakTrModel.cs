using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models.Vit;
using WeakSeg.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.WeakTr;

/// <summary>What <see cref="WeakTrModel.Forward"/> returns. Owns its tensors.</summary>
/// <param name="Backbone">Final tokens (no final norm) and per-block attention [B, H, T, T].</param>
/// <param name="ClassLogits">[B, C] mean over the embedding dim of each class token (L_CLS-token).</param>
/// <param name="CoarseCam">[B, C, h, w] <c>head</c> = Conv2d(D, C, 3, padding 1) on the patch grid (eq. 1–2).</param>
/// <param name="CoarseLogits">[B, C] global average pool of <paramref name="CoarseCam"/> (L_Coarse-CAM).</param>
/// <param name="HeadWeights">[B, K·H] W' (head-major, map h·K + k); all ones for mean-sum.</param>
/// <param name="CrossAttention">[B, C, h, w] ĈA (eq. 4).</param>
/// <param name="PatchAttention">[B, N, N] P̂A (eq. 5), rows = query patches.</param>
/// <param name="FineCam">[B, C, h, w] eq. 6.</param>
/// <param name="FineLogits">[B, C] global average pool of <paramref name="FineCam"/> (L_Fine-CAM).</param>
public sealed record WeakTrOutput(VitOutput Backbone, Tensor ClassLogits, Tensor CoarseCam, Tensor CoarseLogits, Tensor HeadWeights,
    Tensor CrossAttention, Tensor PatchAttention, Tensor FineCam, Tensor FineLogits) : IDisposable
{
    IEnumerable<Tensor> Owned => [ClassLogits, CoarseCam, CoarseLogits, HeadWeights, CrossAttention, PatchAttention, FineCam, FineLogits];

    public WeakTrOutput MoveToOuterDisposeScope()
    {
        Backbone.MoveToOuterDisposeScope();
        foreach (var t in Owned) t.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Backbone.Dispose();
        foreach (var t in Owned) t.Dispose();
    }
}

/// <summary>
/// WeakTr end-to-end CAM generation (paper §3.1, official models.py): a ViT with C class tokens; coarse CAM from a conv head on the
/// patch tokens; all K·H self-attention maps weighted by W' (mean-sum, AAF, fixed-random or pooled attention maps) and averaged into
/// one map Â whose class-to-patch block is ĈA and whose patch-to-patch block is P̂A (the official AAF returns the same weighted maps
/// for both, as the paper's eq. 4–5 weight both with the same W'); fine CAM = P̂A · (ReLU(coarse) ⊙ ĈA). Three multilabel
/// soft-margin losses on class-token, coarse-CAM and fine-CAM logits (eq. 7). No final norm is applied.
/// AAF (official): W' = head FFN(feature FFN(Pool_tokens(o))) with o the blocks' attention-branch outputs (see
/// <see cref="WeakTrFusion.Aaf"/>). Attention and features entering the fusion and the coarse CAM of the fine branch are detached,
/// so L_fine trains only the fusion FFNs.
/// Checkpoint keys beyond the backbone (official names): <c>head.*</c>, <c>adaptive_attention_fusion.attn_head_ffn.{0,2}.weight</c>,
/// <c>adaptive_attention_fusion.attn_feat_ffn.{0,1}.{weight,bias}</c> (AAF), <c>fixed_head_weights</c> (fixed-random: the frozen W,
/// a buffer).
/// </summary>
public sealed class WeakTrModel : VisionTransformer
{
    const string FixedWeightsKey = "fixed_head_weights";

    readonly Conv2d head;
    readonly AdaptiveAttentionFusion? adaptive_attention_fusion;

    public WeakTrModel(WeakTrConfig config) : base(ValidatedBackbone(config), "WeakTr")
    {
        MethodConfig = config;
        int kh = config.NumAttentionHeads;
        head = Conv2d(config.Backbone.EmbedDim, config.NumClasses, kernel_size: 3, stride: 1, padding: 1);
        register_module(nameof(head), head);
        if (config.Fusion != WeakTrFusion.MeanSum)
        {
            bool features = config.Fusion == WeakTrFusion.Aaf;
            adaptive_attention_fusion = new AdaptiveAttentionFusion(kh, config.FfnHidden,
                features ? config.FeatureChannels : 0, features ? config.FeatureHidden : 0, config.FfnBias);
            register_module(nameof(adaptive_attention_fusion), adaptive_attention_fusion);
        }
        if (config.Fusion == WeakTrFusion.FixedRandom)
            register_buffer(FixedWeightsKey, torch.randn(1, kh));   // drawn from torch's generator: seed before constructing
    }

    static VitConfig ValidatedBackbone(WeakTrConfig config)
    {
        config.EnsureValid();
        return config.BackboneConfig;
    }

    public WeakTrConfig MethodConfig { get; }

    public WeakTrFusion Fusion => MethodConfig.Fusion;

    /// <summary>The fusion FFNs of AAF / fixed-random / pooled attention maps; null for mean-sum.</summary>
    public AdaptiveAttentionFusion? AttentionFusion => adaptive_attention_fusion;

    /// <summary>The frozen W [1, K·H] of fixed-random (a buffer: saved, moved with the model, never trained); null otherwise.</summary>
    public Tensor? FixedHeadWeights => Fusion == WeakTrFusion.FixedRandom
        ? named_buffers().First(b => b.name == FixedWeightsKey).buffer
        : null;

    /// <summary>Backbone tokens without the final norm.</summary>
    public override VitOutput forward(Tensor images) => ForwardBlocks(images);

    /// <summary>
    /// W' [B, K·H] (head-major, map h·K + k) from the per-block attentions K × [B, H, T, T] and attention-branch outputs K × [B, T, D]:
    /// ones (mean-sum), head FFN(feature FFN(Pool(head-map features))) (AAF), head FFN(fixed W) broadcast over the batch (fixed-random)
    /// or head FFN(Pool(maps)) (pooled attention maps). Inputs and features are detached when <see cref="WeakTrConfig.DetachAttention"/>.
    /// </summary>
    public Tensor HeadWeights(IReadOnlyList<Tensor> attentions, IReadOnlyList<Tensor> attentionOutputs)
    {
        if (attentions.Count != Depth) throw new WeakSegException($"expected attention of {Depth} blocks; got {attentions.Count}");
        var first = attentions[0];
        long batch = first.shape[0];
        switch (Fusion)
        {
            case WeakTrFusion.MeanSum:
                return torch.ones(batch, MethodConfig.NumAttentionHeads, dtype: first.dtype, device: first.device);
            case WeakTrFusion.Aaf:
            {
                using var scope = torch.NewDisposeScope();
                var features = WeakTrMaps.HeadMajorFeatures(attentionOutputs, Config.NumHeads, MethodConfig.FeatureGrouping);   // [B, K·H, T, D/H]
                if (MethodConfig.DetachAttention) features = features.detach();
                var pooled = WeakTrMaps.PoolFeatures(features, MethodConfig.Pooling, NumClassTokens, MethodConfig.PoolClassTokens);
                return adaptive_attention_fusion!.WeightsFromFeatures(pooled).MoveToOuterDisposeScope();
            }
            case WeakTrFusion.FixedRandom:
            {
                using var fixedW = FixedHeadWeights!.expand(batch, -1);
                return adaptive_attention_fusion!.call(fixedW);
            }
            case WeakTrFusion.PooledAttentionMaps:
            {
                using var scope = torch.NewDisposeScope();
                var pooled = WeakTrMaps.PoolMaps(WeakTrMaps.HeadMajorAttention(attentions), MethodConfig.Pooling);
                return adaptive_attention_fusion!.call(pooled).MoveToOuterDisposeScope();
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(Fusion));
        }
    }

    /// <summary>Full forward: class-token logits, coarse CAM, fused attention, fine CAM and their logits.</summary>
    public WeakTrOutput Forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var backbone = ForwardBlocks(images);
        int c = NumClassTokens;
        var classLogits = backbone.ClassTokens.mean(new long[] { -1 });                             // [B, C]
        var coarseCam = head.call(backbone.PatchGrid());                                            // [B, C, h, w]
        var coarseLogits = coarseCam.mean(new long[] { 2, 3 });                                     // [B, C]

        IReadOnlyList<Tensor> attentions = MethodConfig.DetachAttention
            ? backbone.Attentions.Select(a => a.detach()).ToList()
            : backbone.Attentions;
        var headWeights = HeadWeights(attentions, backbone.BlockAttentionOutputs);                 // [B, K·H], head-major
        var fused = WeakTrMaps.FuseBlocks(attentions, headWeights);                                 // [B, T, T]
        var crossAttention = WeakTrMaps.CrossAttention(fused, c, backbone.GridHeight, backbone.GridWidth);   // [B, C, h, w]
        var patchAttention = WeakTrMaps.PatchAttention(fused, c);                                   // [B, N, N]
        var camInput = MethodConfig.DetachCoarseCam ? coarseCam.detach().relu() : coarseCam;
        var fineCam = WeakTrMaps.FineCam(camInput, crossAttention, patchAttention);                 // [B, C, h, w]
        var fineLogits = fineCam.mean(new long[] { 2, 3 });                                         // [B, C]
        return new WeakTrOutput(backbone, classLogits, coarseCam, coarseLogits, headWeights, crossAttention, patchAttention,
            fineCam, fineLogits).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Forward + loss (eq. 7) for a batch: images [B, 3, H, W], labels [B, C] multi-hot. Total = cls + coarse + fine, with the
    /// parts named "cls", "coarse", "fine". Call inside a dispose scope with grad enabled.
    /// </summary>
    public LossTerms ComputeLoss(Tensor images, Tensor labels)
    {
        if (labels.dim() != 2 || labels.shape[0] != images.shape[0] || labels.shape[1] != MethodConfig.NumClasses)
            throw new WeakSegException($"labels must be [{images.shape[0]}, {MethodConfig.NumClasses}] (batch × classes); got [{string.Join(", ", labels.shape)}]");
        using var output = Forward(images);
        return WeakTrLoss.Compute(output, labels);
    }
}
