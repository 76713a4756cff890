using TorchSharp;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;

namespace WeakSeg.Methods.WeakTr;

/// <summary>
/// WeakTr's attention fusion and fine CAM as pure functions (paper eq. 3–6, as the official code computes them).
/// Head-map order: the K·H maps are indexed head-major, i = h·K + k (head h of block k), in the attention maps, the pooled
/// features and the weights W' (official order).
/// Token order: attention rows are queries and columns keys, class tokens first (T = C + N), as <see cref="VitOutput"/>.
/// </summary>
public static class WeakTrMaps
{
    /// <summary>Per-block attentions K × [B, H, T, T] → [B, K·H, T, T], map h·K + k = attentions[k][:, h].</summary>
    public static Tensor HeadMajorAttention(IReadOnlyList<Tensor> attentions)
    {
        CheckAttentions(attentions);
        long b = attentions[0].shape[0], h = attentions[0].shape[1], t = attentions[0].shape[2];
        using var stacked = torch.stack(attentions, 2);                                       // [B, H, K, T, T]
        return stacked.reshape(b, h * attentions.Count, t, t);
    }

    /// <summary>
    /// Per-block attention-branch outputs K × [B, T, D] → head-map features [B, K·H, T, D/H], map h·K + k.
    /// Interleaved (official): group h = channels h, h + H, h + 2H, …; contiguous: channels [h·D/H, (h + 1)·D/H).
    /// </summary>
    public static Tensor HeadMajorFeatures(IReadOnlyList<Tensor> attentionOutputs, int numHeads, WeakTrFeatureGrouping grouping)
    {
        if (attentionOutputs.Count == 0) throw new WeakSegException("no attention-branch outputs to fuse");
        var first = attentionOutputs[0].shape;
        if (first.Length != 3 || numHeads < 1 || first[2] % numHeads != 0)
            throw new WeakSegException($"attention-branch output must be [B, T, D] with D divisible by {numHeads} heads; got [{string.Join(", ", first)}]");
        foreach (var o in attentionOutputs)
            if (!o.shape.SequenceEqual(first))
                throw new WeakSegException($"all blocks' attention-branch outputs must have the same shape; got [{string.Join(", ", o.shape)}] and [{string.Join(", ", first)}]");
        long k = attentionOutputs.Count, b = first[0], t = first[1], d = first[2], dh = d / numHeads;
        using var scope = torch.NewDisposeScope();
        var stacked = torch.stack(attentionOutputs, 0);                                       // [K, B, T, D]
        var grouped = grouping switch
        {
            WeakTrFeatureGrouping.Interleaved => stacked.reshape(k, b, t, dh, numHeads).permute(1, 4, 0, 2, 3),   // [B, H, K, T, D/H]
            WeakTrFeatureGrouping.Contiguous => stacked.reshape(k, b, t, numHeads, dh).permute(1, 3, 0, 2, 4),
            _ => throw new ArgumentOutOfRangeException(nameof(grouping)),
        };
        return grouped.reshape(b, numHeads * k, t, dh).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Pools each (head map, channel) over the tokens: features [B, M, T, D/H] → [B, M, D/H]. All T tokens (official) or only the
    /// N patch tokens after the first <paramref name="numClassTokens"/> when <paramref name="includeClassTokens"/> is false.
    /// </summary>
    public static Tensor PoolFeatures(Tensor features, WeakTrPooling pooling, int numClassTokens, bool includeClassTokens)
    {
        if (features.dim() != 4) throw new WeakSegException($"head-map features must be [B, M, T, D/H]; got [{string.Join(", ", features.shape)}]");
        long t = features.shape[2];
        if (!includeClassTokens && (numClassTokens < 0 || numClassTokens >= t))
            throw new WeakSegException($"cannot drop {numClassTokens} class tokens from {t} tokens");
        using var tokens = includeClassTokens ? features.alias() : features.narrow(2, numClassTokens, t - numClassTokens);
        return pooling switch
        {
            WeakTrPooling.Average => tokens.mean(new long[] { 2 }),
            WeakTrPooling.Max => tokens.amax(new long[] { 2 }),
            _ => throw new ArgumentOutOfRangeException(nameof(pooling)),
        };
    }

    /// <summary>
    /// The <see cref="WeakTrFusion.PooledAttentionMaps"/> descriptor: one scalar per softmax attention map (global average or max over
    /// its T×T entries). maps [B, M, T, T] → [B, M]. A softmax map's global average is exactly 1/T.
    /// </summary>
    public static Tensor PoolMaps(Tensor maps, WeakTrPooling pooling) => pooling switch
    {
        WeakTrPooling.Average => maps.mean(new long[] { 2, 3 }),
        WeakTrPooling.Max => maps.amax(new long[] { 2, 3 }),
        _ => throw new ArgumentOutOfRangeException(nameof(pooling)),
    };

    /// <summary>
    /// Weighted head mean Â = (1/M) Σ_i W'_i A_i (paper eq. 4–5 before slicing; the official AAF returns the weighted maps, the model
    /// averages them). maps [B, M, T, T] and weights [B, M] → [B, T, T]. With all weights 1 this is the plain average ("mean-sum").
    /// </summary>
    public static Tensor FuseHeads(Tensor maps, Tensor headWeights)
    {
        if (maps.dim() != 4 || maps.shape[2] != maps.shape[3])
            throw new WeakSegException($"attention maps must be [B, M, T, T]; got [{string.Join(", ", maps.shape)}]");
        long b = maps.shape[0], m = maps.shape[1], t = maps.shape[2];
        if (headWeights.dim() != 2 || headWeights.shape[0] != b || headWeights.shape[1] != m)
            throw new WeakSegException($"head weights must be [{b}, {m}]; got [{string.Join(", ", headWeights.shape)}]");
        using var scope = torch.NewDisposeScope();
        var weighted = maps.mul(headWeights.reshape(b, m, 1, 1));                             // [B, M, T, T]
        return weighted.mean(new long[] { 1 }).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="FuseHeads"/> on the per-block attentions K × [B, H, T, T] without building the [B, K·H, T, T] stack: one batched
    /// product per block, [B, 1, H] · [B, H, T·T], with the weights of block k's heads (map h·K + k). → [B, T, T].
    /// </summary>
    public static Tensor FuseBlocks(IReadOnlyList<Tensor> attentions, Tensor headWeights)
    {
        CheckAttentions(attentions);
        long b = attentions[0].shape[0], h = attentions[0].shape[1], t = attentions[0].shape[2], k = attentions.Count;
        if (headWeights.dim() != 2 || headWeights.shape[0] != b || headWeights.shape[1] != h * k)
            throw new WeakSegException($"head weights must be [{b}, {h * k}]; got [{string.Join(", ", headWeights.shape)}]");
        using var scope = torch.NewDisposeScope();
        var perBlock = headWeights.reshape(b, h, k);                                            // [B, H, K]: map h·K + k
        Tensor? sum = null;
        for (int i = 0; i < k; i++)
        {
            var w = perBlock.select(2, i).unsqueeze(1);                                         // [B, 1, H]
            var weighted = torch.bmm(w, attentions[i].reshape(b, h, t * t));                   // [B, 1, T·T]
            sum = sum is null ? weighted : sum.add(weighted);
        }
        return sum!.div(h * k).reshape(b, t, t).MoveToOuterDisposeScope();
    }

    /// <summary>ĈA: the class-to-patch block Â[:C, C:] on the patch grid. fused [B, T, T] → [B, C, h, w] (row c = class token c as query).</summary>
    public static Tensor CrossAttention(Tensor fused, int numClassTokens, int gridHeight, int gridWidth)
    {
        long t = fused.shape[1];
        if (t != numClassTokens + (long)gridHeight * gridWidth)
            throw new WeakSegException($"attention has {t} tokens; expected {numClassTokens} class tokens + {gridHeight}×{gridWidth} patches");
        using var block = fused.narrow(1, 0, numClassTokens).narrow(2, numClassTokens, t - numClassTokens);   // [B, C, N]
        return block.reshape(fused.shape[0], numClassTokens, gridHeight, gridWidth);
    }

    /// <summary>P̂A: the patch-to-patch block Â[C:, C:]. fused [B, T, T] → [B, N, N]; entry [j, k] = attention of query patch j to key patch k.</summary>
    public static Tensor PatchAttention(Tensor fused, int numClassTokens)
    {
        long t = fused.shape[1];
        using var block = fused.narrow(1, numClassTokens, t - numClassTokens).narrow(2, numClassTokens, t - numClassTokens);
        return block.contiguous().clone();
    }

    /// <summary>
    /// Fine CAM (eq. 6): R^{N×N×C}(P̂A · R^{N²×C}(CAM ⊙ ĈA)), i.e. fine[c, j] = Σ_k P̂A[j, k] · (CAM ⊙ ĈA)[c, k]:
    /// each patch j gathers the class evidence of the patches it attends to (P̂A multiplies from the left, rows = queries).
    /// coarse and crossAttention [B, C, h, w], patchAttention [B, N, N] → [B, C, h, w].
    /// </summary>
    public static Tensor FineCam(Tensor coarse, Tensor crossAttention, Tensor patchAttention)
    {
        if (!coarse.shape.SequenceEqual(crossAttention.shape))
            throw new WeakSegException($"coarse CAM [{string.Join(", ", coarse.shape)}] and cross attention [{string.Join(", ", crossAttention.shape)}] differ in shape");
        using var gated = coarse.mul(crossAttention);                                                 // [B, C, h, w]
        return AttentionMaps.Refine(patchAttention, gated);
    }

    static void CheckAttentions(IReadOnlyList<Tensor> attentions)
    {
        if (attentions.Count == 0) throw new WeakSegException("no attention maps to fuse");
        var first = attentions[0].shape;
        if (first.Length != 4 || first[2] != first[3]) throw new WeakSegException($"attention must be [B, H, T, T]; got [{string.Join(", ", first)}]");
        foreach (var a in attentions)
            if (!a.shape.SequenceEqual(first))
                throw new WeakSegException($"all blocks' attention must have the same shape; got [{string.Join(", ", a.shape)}] and [{string.Join(", ", first)}]");
    }
}
