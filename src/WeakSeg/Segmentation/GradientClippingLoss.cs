using TorchSharp;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>What one batch's clipping did.</summary>
/// <param name="LossMap">[B, H, W] per-pixel loss after clipping (= the CE map when the gate is shut or for the naive decoder)</param>
/// <param name="Kept">[B, H, W] bool: pixels whose loss still passes a gradient (ignored pixels count as kept, they carry a 0 loss)</param>
/// <param name="PatchMeans">[1, Lh, Lw] λ_i, the mean G of each S×S patch of the batch-averaged map; null when the gate is shut</param>
/// <param name="Threshold">[1, Lh, Lw] max(λ_i, λ_global), shared by every image of the batch; null when the gate is shut</param>
/// <param name="GlobalMean">λ_global, the mean G of the batch</param>
/// <param name="Clipping">true when λ_global ≤ τ, i.e. the threshold was applied</param>
public sealed record ClipResult(Tensor LossMap, Tensor Kept, Tensor? PatchMeans, Tensor? Threshold, double GlobalMean, bool Clipping);

/// <summary>
/// WeakTr's gradient-clipping decoder loss as the official online-retraining code computes it (paper §3.2, Eq. 9–17), and the naive
/// decoder's plain CE.
/// <list type="number">
/// <item>CE_p = per-pixel cross-entropy of the (upsampled) logits against the CAM seeds, 0 at pixels labelled 255.</item>
/// <item>G_p, the paper's "gradient", is CE_p itself (official). <see cref="ClipSignal.LogitGradientNorm"/> uses ‖softmax − onehot‖₂
///   instead (a variant, not in the official code).</item>
/// <item>λ_global = the mean of G over the batch. If λ_global &gt; τ nothing is clipped.</item>
/// <item>Otherwise G is averaged over the batch ([H, W]), then over each S×S patch: λ_i; the threshold max(λ_i, λ_global) is shared by
///   every image of the batch, and each pixel's loss becomes min(CE_p, threshold) — clipped pixels keep the threshold's value but pass
///   no gradient (the threshold is a constant).</item>
/// <item>The loss is the mean of the (clipped) map.</item>
/// </list>
/// Official quirks, with a corrected variant each: ignored pixels count as zeros in λ_global, λ_i and the final mean
/// (<see cref="IgnoredPixelsInMeans.CountAsZero"/>; <see cref="IgnoredPixelsInMeans.Exclude"/> averages over labelled pixels only), and
/// an image side that S does not divide is an error (the official avg_pool2d(padding = H mod S) cannot produce the right size;
/// <see cref="ClipPatchRemainder.SmallerEdgePatches"/> lets the last patches of a row/column be smaller).
/// </summary>
public static class GradientClippingLoss
{
    public const long IgnoreIndex = 255;

    /// <summary>Per-pixel cross-entropy [B, H, W] (0 at ignored pixels). logits [B, C, H, W], target [B, H, W] int64 with 255 = ignore.</summary>
    public static Tensor PixelCrossEntropy(Tensor logits, Tensor target) =>
        nn.functional.cross_entropy(logits, target, ignore_index: IgnoreIndex, reduction: nn.Reduction.None);

    /// <summary>‖softmax(z) − onehot(y)‖₂ per pixel [B, H, W], detached (0 at ignored pixels).</summary>
    public static Tensor LogitGradientNorm(Tensor logits, Tensor target)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var valid = target.ne(IgnoreIndex);
        var safe = torch.where(valid, target, torch.zeros_like(target));
        var onehot = nn.functional.one_hot(safe, logits.shape[1]).permute(0, 3, 1, 2).to_type(logits.dtype);   // [B, C, H, W]
        var norm = logits.detach().softmax(1).sub(onehot).square().sum(1).sqrt();
        return norm.mul(valid.to_type(norm.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>Mean of <paramref name="map"/> [B, H, W] over all pixels (official) or over the labelled ones (0 when there are none).</summary>
    public static Tensor Mean(Tensor map, Tensor valid, IgnoredPixelsInMeans ignored) => ignored switch
    {
        IgnoredPixelsInMeans.CountAsZero => map.mean(),
        IgnoredPixelsInMeans.Exclude => map.mul(valid.to_type(map.dtype)).sum().div(valid.sum().to_type(map.dtype).clamp_min(1)),
        _ => throw new ArgumentOutOfRangeException(nameof(ignored)),
    };

    /// <summary>
    /// λ_i: the mean of <paramref name="g"/> [B, H, W] per S×S patch of the batch-averaged map → [1, Lh, Lw]. Ignored pixels are zeros in
    /// the averages (official) or left out of them (<see cref="IgnoredPixelsInMeans.Exclude"/>: a patch without labelled pixels gets 0).
    /// </summary>
    public static Tensor PatchMeans(Tensor g, Tensor valid, int patchSize, IgnoredPixelsInMeans ignored, ClipPatchRemainder remainder)
    {
        if (patchSize < 1) throw new WeakSegException($"gradient-clipping patch size must be ≥ 1 (got {patchSize})");
        long b = g.shape[0], h = g.shape[1], w = g.shape[2];
        if (remainder == ClipPatchRemainder.Error && (h % patchSize != 0 || w % patchSize != 0))
            throw new WeakSegException($"gradient clipping: the {h}×{w} prediction is not divisible into {patchSize}×{patchSize} patches " +
                                       "(the official code fails here; use ClipPatchRemainder = SmallerEdgePatches or a crop divisible by the patch size)");
        using var scope = torch.NewDisposeScope();
        long lh = (h + patchSize - 1) / patchSize, lw = (w + patchSize - 1) / patchSize;
        var weights = ignored == IgnoredPixelsInMeans.CountAsZero ? torch.ones_like(g) : valid.to_type(g.dtype);
        var padding = new long[] { 0, lw * patchSize - w, 0, lh * patchSize - h };
        var sums = nn.functional.pad(g.mul(weights), padding).reshape(b, lh, patchSize, lw, patchSize).sum(new long[] { 0, 2, 4 });
        var counts = nn.functional.pad(weights, padding).reshape(b, lh, patchSize, lw, patchSize).sum(new long[] { 0, 2, 4 });
        return sums.div(counts.clamp_min(1)).unsqueeze(0).MoveToOuterDisposeScope();           // [1, Lh, Lw]
    }

    /// <summary>
    /// Clips the per-pixel CE map <paramref name="ce"/> [B, H, W] (0 at ignored pixels), S = <paramref name="patchSize"/> and
    /// τ = <paramref name="startValue"/>. The clipping signal G is the CE map itself (official) unless <paramref name="otherSignal"/>
    /// [B, H, W] is given.
    /// </summary>
    public static ClipResult Clip(Tensor ce, Tensor valid, int patchSize, double startValue,
        IgnoredPixelsInMeans ignored = IgnoredPixelsInMeans.CountAsZero, ClipPatchRemainder remainder = ClipPatchRemainder.Error,
        Tensor? otherSignal = null)
    {
        using var scope = torch.NewDisposeScope();
        var signal = (otherSignal ?? ce).detach();
        double global;
        using (torch.no_grad()) global = Mean(signal, valid, ignored).item<float>();
        if (!(global <= startValue))
            return new ClipResult(ce.alias().MoveToOuterDisposeScope(), torch.ones_like(valid).MoveToOuterDisposeScope(), null, null, global, false);

        long b = ce.shape[0], h = ce.shape[1], w = ce.shape[2];
        Tensor patchMeans, threshold, perPixel;
        using (torch.no_grad())
        {
            patchMeans = PatchMeans(signal, valid, patchSize, ignored, remainder);              // [1, Lh, Lw]
            threshold = patchMeans.clamp_min(global);                                           // max(λ_i, λ_global)
            long lh = threshold.shape[1], lw = threshold.shape[2];
            perPixel = threshold.reshape(lh, 1, lw, 1).expand(lh, patchSize, lw, patchSize)
                .reshape(lh * patchSize, lw * patchSize).narrow(0, 0, h).narrow(1, 0, w).expand(b, h, w);   // [B, H, W]
        }
        Tensor lossMap, kept;
        if (otherSignal is null)
        {
            // official: clamp(CE − thr, max = 0) + thr = min(CE, thr); the clamp passes the gradient where CE ≤ thr
            lossMap = ce.sub(perPixel).clamp_max(0).add(perPixel);
            kept = signal.le(perPixel);
        }
        else
        {
            // another signal: pixels above the threshold keep their CE value without a gradient
            kept = signal.le(perPixel);
            lossMap = torch.where(kept, ce, ce.detach());
        }
        return new ClipResult(lossMap.MoveToOuterDisposeScope(), kept.MoveToOuterDisposeScope(), patchMeans.MoveToOuterDisposeScope(),
            threshold.MoveToOuterDisposeScope(), global, true);
    }

    /// <summary>
    /// The retraining loss for logits [B, C, H, W] and labels [B, H, W] (int64, 255 = ignore): the mean of the (clipped) CE map. Parts for
    /// the log: "ce" (the unclipped mean), and for the clipping decoder "lambda_global", "kept" (share of labelled pixels still passing a
    /// gradient) and "clipping" (1 when the threshold was applied).
    /// </summary>
    public static LossTerms Compute(Tensor logits, Tensor target, SegmentationDecoderLoss loss, ClipSignal signal, int patchSize, double startValue,
        IgnoredPixelsInMeans ignored = IgnoredPixelsInMeans.CountAsZero, ClipPatchRemainder remainder = ClipPatchRemainder.Error)
    {
        if (logits.dim() != 4 || target.dim() != 3 || logits.shape[0] != target.shape[0] || logits.shape[2] != target.shape[1] || logits.shape[3] != target.shape[2])
            throw new WeakSegException($"logits [{string.Join(", ", logits.shape)}] and labels [{string.Join(", ", target.shape)}] do not match");
        var ce = PixelCrossEntropy(logits, target);                       // [B, H, W], 0 where ignored
        var valid = target.ne(IgnoreIndex);
        var plainMean = Mean(ce, valid, ignored);
        if (loss == SegmentationDecoderLoss.Naive)
            return new LossTerms(plainMean, [("ce", plainMean.detach())]);

        var other = signal == ClipSignal.CrossEntropy ? null : LogitGradientNorm(logits, target);
        var result = Clip(ce, valid, patchSize, startValue, ignored, remainder, other);
        var total = Mean(result.LossMap, valid, ignored);
        var keptLabelled = result.Kept.logical_and(valid).sum().to_type(ScalarType.Float32);
        var keptShare = keptLabelled.div(valid.sum().to_type(ScalarType.Float32).clamp_min(1));
        return new LossTerms(total,
        [
            ("ce", plainMean.detach()),
            ("lambda_global", torch.tensor((float)result.GlobalMean)),
            ("kept", keptShare),
            ("clipping", torch.tensor(result.Clipping ? 1f : 0f)),
        ]);
    }
}
