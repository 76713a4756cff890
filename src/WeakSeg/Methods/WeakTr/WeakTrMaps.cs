using TorchSharp;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;

namespace WeakSeg.Methods.WeakTr;

/// <summary>
/// WeakTr's attention fusion and fine CAM as pure functions (paper eq. 3–6).
/// Head order: the K·H maps are indexed layer-major, i = k·H + h (block k, head h), in both the pooled W and the weights W'.
/// Token order: attention rows are queries and columns keys, class tokens first (T = C + N), as <see cref="VitOutput"/>.
/// </summary>
public static class WeakTrMaps
{
    /// <summary>
    /// W = Pooling(A): one scalar per attention map (global average or max over its T×T entries).
    /// Per-block attentions [B, H, T, T] (K of them) → [B, K·H], layer-major.
    /// Note: a softmax attention map has rows summing to 1, so its global average is exactly 1/T for every head and image.
    /// </summary>
    public static Tensor PoolHeads(IReadOnlyList<Tensor> attentions, WeakTrPooling pooling)
    {
        CheckAttentions(attentions);
        using var scope = torch.NewDisposeScope();
        var perLayer = attentions.Select(a => pooling switch
        {
            WeakTrPooling.Average => a.mean(new long[] { 2, 3 }),
            WeakTrPooling.Max => a.amax(new long[] { 2, 3 }),
            _ => throw new ArgumentOutOfRangeException(nameof(pooling)),
        }).ToList();                                                                                  // K × [B, H]
        return torch.cat(perLayer, 1).MoveToOuterDisposeScope();                                     // [B, K·H]
    }

    /// <summary>
    /// Weighted head mean Â = (1/KH) Σ_i W'_i A_i (paper eq. 4–5 before slicing). Per-block attentions [B, H, T, T] and
    /// weights [B, K·H] (layer-major) → [B, T, T]. With all weights 1 this is the plain average of the K·H maps ("mean-sum").
    /// </summary>
    public static Tensor FuseHeads(IReadOnlyList<Tensor> attentions, Tensor headWeights)
    {
        CheckAttentions(attentions);
        long b = attentions[0].shape[0], h = attentions[0].shape[1], t = attentions[0].shape[2];
        long kh = attentions.Count * h;
        if (headWeights.dim() != 2 || headWeights.shape[0] != b || headWeights.shape[1] != kh)
            throw new WeakSegException($"head weights must be [{b}, {kh}]; got [{string.Join(", ", headWeights.shape)}]");
        using var scope = torch.NewDisposeScope();
        Tensor? sum = null;
        for (int k = 0; k < attentions.Count; k++)
        {
            // One batched matrix product per block: [B, 1, H] · [B, H, T·T] → [B, 1, T·T]; no [B, K·H, T, T] copy is made.
            var w = headWeights.narrow(1, k * h, h).unsqueeze(1);
            var weighted = torch.bmm(w, attentions[k].reshape(b, h, t * t));
            sum = sum is null ? weighted : sum + weighted;
        }
        return sum!.div(kh).reshape(b, t, t).MoveToOuterDisposeScope();
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
