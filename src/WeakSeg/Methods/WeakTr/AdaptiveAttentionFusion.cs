using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.WeakTr;

/// <summary>
/// The FFN of WeakTr's adaptive attention fusion (paper eq. 3, appendix A.1): W' = σ(Linear(18 → KH)(ReLU(Linear(KH → 18)(W)))).
/// Input: pooled head descriptors W [B, K·H]; output: head weights W' [B, K·H] in (0, 1).
/// The hidden activation is ReLU: the paper names only "a 2-layer FFN … followed by a sigmoid"; ReLU is the activation of the
/// public reference code (an SE-style squeeze/excite block), so it is the one that matches the published numbers.
/// Checkpoint keys: <c>attn_head_ffn.0.weight</c>, <c>attn_head_ffn.2.weight</c> (+ <c>.bias</c> when enabled).
/// </summary>
public sealed class AdaptiveAttentionFusion : Module<Tensor, Tensor>
{
    readonly Sequential attn_head_ffn;

    public AdaptiveAttentionFusion(int numHeadMaps, int hidden, bool bias = false) : base(nameof(AdaptiveAttentionFusion))
    {
        if (numHeadMaps < 1) throw new WeakSegException($"the fusion needs at least one attention map (got {numHeadMaps})");
        if (hidden < 1) throw new WeakSegException($"FFN hidden width must be ≥ 1 (got {hidden})");
        NumHeadMaps = numHeadMaps;
        Hidden = hidden;
        attn_head_ffn = Sequential(
            ("0", Linear(numHeadMaps, hidden, hasBias: bias)),
            ("1", ReLU()),
            ("2", Linear(hidden, numHeadMaps, hasBias: bias)),
            ("3", Sigmoid()));
        RegisterComponents();
    }

    /// <summary>K·H, the number of attention maps weighted.</summary>
    public int NumHeadMaps { get; }

    /// <summary>FFN hidden width.</summary>
    public int Hidden { get; }

    /// <summary>First FFN layer Linear(K·H → hidden).</summary>
    public Linear InputLayer => (Linear)attn_head_ffn[0];

    /// <summary>Second FFN layer Linear(hidden → K·H).</summary>
    public Linear OutputLayer => (Linear)attn_head_ffn[2];

    /// <summary>W [B, K·H] → W' [B, K·H].</summary>
    public override Tensor forward(Tensor pooled)
    {
        if (pooled.dim() != 2 || pooled.shape[1] != NumHeadMaps)
            throw new WeakSegException($"fusion input must be [B, {NumHeadMaps}]; got [{string.Join(", ", pooled.shape)}]");
        return attn_head_ffn.call(pooled);
    }
}
