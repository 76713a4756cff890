using TorchSharp;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>The clipping decision for one batch.</summary>
/// <param name="Keep">[B, H, W] bool: labelled pixels that contribute to the loss</param>
/// <param name="PatchMeans">[B, Lh, Lw] λ_i, the mean G over the labelled pixels of each S×S patch (NaN for a patch without labelled pixels)</param>
/// <param name="GlobalMean">λ_global: mean of the λ_i of every patch of the batch that has labelled pixels (NaN when none has)</param>
/// <param name="Clipping">true when λ_global ≤ τ, i.e. the mask M was applied</param>
public sealed record ClipDecision(Tensor Keep, Tensor PatchMeans, double GlobalMean, bool Clipping);

/// <summary>
/// WeakTr's gradient-clipping decoder loss (paper §3.2, Eq. 9–17), and the naive decoder's plain CE.
/// <list type="number">
/// <item>CE_p = per-pixel cross-entropy of the (upsampled) logits against the CAM seeds; pixels labelled 255 are ignored everywhere.</item>
/// <item>G_p = the per-pixel "gradient": by default CE_p itself (Eq. 9 writes G = CE; τ = 1.2 from Table 5 only makes sense on the
///   CE scale, since a true logit-gradient norm ‖softmax − onehot‖₂ never exceeds √2 ≈ 1.41 and would make τ = 1.2 gate almost
///   nothing); <see cref="ClipSignal.LogitGradientNorm"/> selects ‖softmax(z_p) − onehot(y_p)‖₂ = ‖∂CE_p/∂z_p‖₂ instead. G is detached.</item>
/// <item>The image is split into S×S patches from the top-left (edge patches are smaller when S does not divide the size);
///   λ_i = mean of G over the labelled pixels of patch i; λ_global = mean of λ_i over all patches of all images of the batch
///   that contain a labelled pixel (Eq. 11 per image; the paper gates on "λ_global of the current batch", so the batch's patches are pooled).</item>
/// <item>If λ_global ≤ τ: M_p = [G_p ≤ max(λ_i(p), λ_global)], else M_p = 1 (Eq. 14, 17).</item>
/// <item>Loss = Σ_p M_p·CE_p / Σ_p M_p over labelled pixels — the mean over the pixels that still contribute, so clipped pixels
///   are treated like ignored ones (the naive decoder's CE mean over labelled pixels is the special case M = 1). 0 when no pixel is kept.</item>
/// </list>
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

    /// <summary>
    /// The clipping mask for per-pixel signal <paramref name="g"/> [B, H, W] and labelled-pixel mask <paramref name="valid"/> [B, H, W] (bool),
    /// with S = <paramref name="patchSize"/> and τ = <paramref name="startValue"/> (see the class summary).
    /// </summary>
    public static ClipDecision Decide(Tensor g, Tensor valid, int patchSize, double startValue)
    {
        if (patchSize < 1) throw new ArgumentOutOfRangeException(nameof(patchSize));
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        long b = g.shape[0], h = g.shape[1], w = g.shape[2];
        long lh = (h + patchSize - 1) / patchSize, lw = (w + patchSize - 1) / patchSize;
        var v = valid.to_type(ScalarType.Float32);
        var gv = g.detach().to_type(ScalarType.Float32).mul(v);
        var padding = new long[] { 0, lw * patchSize - w, 0, lh * patchSize - h };
        var gPadded = nn.functional.pad(gv, padding).reshape(b, lh, patchSize, lw, patchSize);
        var vPadded = nn.functional.pad(v, padding).reshape(b, lh, patchSize, lw, patchSize);
        var sums = gPadded.sum(new long[] { 2, 4 });                     // [B, Lh, Lw]
        var counts = vPadded.sum(new long[] { 2, 4 });
        var hasPixels = counts.gt(0);
        var patchMeans = torch.where(hasPixels, sums.div(counts.clamp_min(1)), torch.full_like(sums, double.NaN));
        long populated = hasPixels.sum().item<long>();
        double global = populated == 0 ? double.NaN : torch.where(hasPixels, patchMeans, torch.zeros_like(patchMeans)).sum().item<float>() / populated;
        bool clipping = populated > 0 && global <= startValue;
        Tensor keep;
        if (clipping)
        {
            var threshold = torch.where(hasPixels, patchMeans.clamp_min(global), torch.zeros_like(patchMeans));   // max(λ_i, λ_global)
            var perPixel = threshold.reshape(b, lh, 1, lw, 1).expand(b, lh, patchSize, lw, patchSize)
                .reshape(b, lh * patchSize, lw * patchSize).narrow(1, 0, h).narrow(2, 0, w);
            keep = valid.logical_and(g.detach().to_type(ScalarType.Float32).le(perPixel));
        }
        else keep = valid.clone();
        return new ClipDecision(keep.MoveToOuterDisposeScope(), patchMeans.MoveToOuterDisposeScope(), global, clipping);
    }

    /// <summary>
    /// The retraining loss for logits [B, C, H, W] and labels [B, H, W] (int64, 255 = ignore). Parts for the log:
    /// "ce" (plain CE mean over labelled pixels), and for the clipping decoder "lambda_global", "kept" (share of labelled pixels kept)
    /// and "clipping" (1 when the mask was applied).
    /// </summary>
    public static LossTerms Compute(Tensor logits, Tensor target, SegmentationDecoderLoss loss, ClipSignal signal, int patchSize, double startValue)
    {
        if (logits.dim() != 4 || target.dim() != 3 || logits.shape[0] != target.shape[0] || logits.shape[2] != target.shape[1] || logits.shape[3] != target.shape[2])
            throw new ArgumentException($"logits [{string.Join(", ", logits.shape)}] and labels [{string.Join(", ", target.shape)}] do not match");
        var ce = PixelCrossEntropy(logits, target);                       // [B, H, W], 0 where ignored
        var valid = target.ne(IgnoreIndex);
        var validCount = valid.sum().to_type(ScalarType.Float32);
        var plainMean = ce.sum().div(validCount.clamp_min(1));
        if (loss == SegmentationDecoderLoss.Naive)
            return new LossTerms(plainMean, [("ce", plainMean.detach())]);

        var g = signal == ClipSignal.CrossEntropy ? ce.detach() : LogitGradientNorm(logits, target);
        var decision = Decide(g, valid, patchSize, startValue);
        var keep = decision.Keep.to_type(ce.dtype);
        var keptCount = keep.sum();
        var total = ce.mul(keep).sum().div(keptCount.clamp_min(1));
        var keptShare = keptCount.div(validCount.clamp_min(1));
        return new LossTerms(total,
        [
            ("ce", plainMean.detach()),
            ("lambda_global", torch.tensor(double.IsNaN(decision.GlobalMean) ? 0f : (float)decision.GlobalMean)),
            ("kept", keptShare.detach()),
            ("clipping", torch.tensor(decision.Clipping ? 1f : 0f)),
        ]);
    }
}
