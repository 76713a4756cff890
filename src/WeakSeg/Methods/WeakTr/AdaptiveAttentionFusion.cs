using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.WeakTr;

/// <summary>
/// The two FFNs of WeakTr's adaptive attention fusion (official AAF module; the paper writes W' = FFN(Pool(A))).
/// <list type="number">
/// <item><c>attn_feat_ffn</c> = Linear(D/H → D/H / feat_reduction, bias) → Linear(→ 1, bias), no activation between: one scalar per
///   head map from its pooled attention-branch features [.., D/H]. Built only when the fusion feeds features (AAF).</item>
/// <item><c>attn_head_ffn</c> = Linear(K·H → hidden, no bias) → ReLU → Linear(hidden → K·H, no bias) → Sigmoid: the head weights W'.</item>
/// </list>
/// Checkpoint keys (official names): <c>attn_feat_ffn.{0,1}.{weight,bias}</c>, <c>attn_head_ffn.{0,2}.weight</c>.
/// </summary>
public sealed class AdaptiveAttentionFusion : Module<Tensor, Tensor>
{
    readonly Sequential attn_head_ffn;
    readonly Sequential? attn_feat_ffn;

    /// <param name="numHeadMaps">K·H</param>
    /// <param name="hidden">hidden width of the head FFN (official: int(K·H / reduction))</param>
    /// <param name="featureChannels">D/H, the width of one head map's pooled features; 0 = no feature FFN (the head FFN is fed directly)</param>
    /// <param name="featureHidden">hidden width of the feature FFN (official: D/H / feat_reduction)</param>
    /// <param name="headBias">biases in the head FFN (official: none)</param>
    public AdaptiveAttentionFusion(int numHeadMaps, int hidden, int featureChannels = 0, int featureHidden = 0, bool headBias = false)
        : base(nameof(AdaptiveAttentionFusion))
    {
        if (numHeadMaps < 1) throw new WeakSegException($"the fusion needs at least one attention map (got {numHeadMaps})");
        if (hidden < 1) throw new WeakSegException($"head FFN hidden width must be ≥ 1 (got {hidden})");
        if (featureChannels < 0) throw new WeakSegException($"feature channels must be ≥ 0 (got {featureChannels})");
        if (featureChannels > 0 && featureHidden < 1) throw new WeakSegException($"feature FFN hidden width must be ≥ 1 (got {featureHidden})");
        NumHeadMaps = numHeadMaps;
        Hidden = hidden;
        FeatureChannels = featureChannels;
        attn_head_ffn = Sequential(
            ("0", Linear(numHeadMaps, hidden, hasBias: headBias)),
            ("1", ReLU()),
            ("2", Linear(hidden, numHeadMaps, hasBias: headBias)),
            ("3", Sigmoid()));
        if (featureChannels > 0)
            attn_feat_ffn = Sequential(
                ("0", Linear(featureChannels, featureHidden, hasBias: true)),
                ("1", Linear(featureHidden, 1, hasBias: true)));
        RegisterComponents();
    }

    /// <summary>K·H, the number of attention maps weighted.</summary>
    public int NumHeadMaps { get; }

    /// <summary>Head FFN hidden width.</summary>
    public int Hidden { get; }

    /// <summary>D/H of the feature FFN's input; 0 when there is no feature FFN.</summary>
    public int FeatureChannels { get; }

    /// <summary>First head-FFN layer Linear(K·H → hidden).</summary>
    public Linear InputLayer => (Linear)attn_head_ffn[0];

    /// <summary>Second head-FFN layer Linear(hidden → K·H).</summary>
    public Linear OutputLayer => (Linear)attn_head_ffn[2];

    /// <summary>One scalar per head map from its pooled features: [B, K·H, D/H] → [B, K·H].</summary>
    public Tensor HeadScalars(Tensor pooledFeatures)
    {
        if (attn_feat_ffn is null) throw new WeakSegException("this fusion has no feature FFN");
        if (pooledFeatures.dim() != 3 || pooledFeatures.shape[1] != NumHeadMaps || pooledFeatures.shape[2] != FeatureChannels)
            throw new WeakSegException($"pooled features must be [B, {NumHeadMaps}, {FeatureChannels}]; got [{string.Join(", ", pooledFeatures.shape)}]");
        using var scalars = attn_feat_ffn.call(pooledFeatures);                            // [B, K·H, 1]
        return scalars.squeeze(-1);
    }

    /// <summary>Head FFN: one value per head map [B, K·H] → W' [B, K·H] in (0, 1).</summary>
    public override Tensor forward(Tensor perHead)
    {
        if (perHead.dim() != 2 || perHead.shape[1] != NumHeadMaps)
            throw new WeakSegException($"fusion input must be [B, {NumHeadMaps}]; got [{string.Join(", ", perHead.shape)}]");
        return attn_head_ffn.call(perHead);
    }

    /// <summary>AAF: pooled features [B, K·H, D/H] → feature FFN → head FFN → W' [B, K·H].</summary>
    public Tensor WeightsFromFeatures(Tensor pooledFeatures)
    {
        using var scalars = HeadScalars(pooledFeatures);
        return forward(scalars);
    }
}
