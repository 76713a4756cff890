using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>How the background/foreground-balanced segmentation loss treats a batch without background or foreground pixels.</summary>
public enum SegmentationLossReduction
{
    /// <summary>
    /// ToCo's get_seg_loss (reference default): 0.5·(mean CE over background pixels + mean CE over foreground pixels), each a
    /// mean over its labelled pixels — NaN when a batch has no background or no foreground pixel.
    /// </summary>
    Reference,

    /// <summary>MoRe's get_seg_loss: each half is Σ CE / (count + 1e-6), so an empty half contributes 0 and the loss stays finite.</summary>
    CountEpsilon,
}

/// <summary>Whether the class-token contrast loss keeps ToCo's extra term.</summary>
public enum CtcLossVariant
{
    /// <summary>
    /// Reference (ToCo CTCLoss_neg): a Python for/else always adds −log(1 / (1 + Σ_neg + 1e-4)) once more per teacher view.
    /// </summary>
    Reference,

    /// <summary>Only the positive-view terms (the extra term left out).</summary>
    PositivesOnly,
}

/// <summary>ToCo losses (model/losses.py), pure functions.</summary>
public static class ToCoLoss
{
    /// <summary>Multi-label soft margin (PyTorch's multilabel_soft_margin_loss): logits, labels [B, C] → scalar.</summary>
    public static Tensor MultilabelSoftMargin(Tensor logits, Tensor labels) =>
        nn.functional.multilabel_soft_margin_loss(logits, labels.to_type(logits.dtype));

    /// <summary>
    /// Masked patch-token contrast (get_masked_ptc_loss): s_ij = |cos(f_i, f_j)| over the tokens of fmap (L2-normalised over
    /// channels, eps 1e-8); L = 0.5·(1 − Σ_pos s / (n_pos + 1)) + 0.5·Σ_neg s / (n_neg + 1), pooled over the batch, where
    /// pos = mask 1 and neg = mask 0 (other values, e.g. 255, are ignored). fmap [B, D, h, w], mask [B, N, N] → scalar.
    /// </summary>
    public static Tensor MaskedPatchContrast(Tensor featureMap, Tensor affinityMask)
    {
        if (featureMap.dim() != 4) throw new WeakSegException($"PTC needs a feature map [B, D, h, w]; got [{string.Join(", ", featureMap.shape)}]");
        long b = featureMap.shape[0], d = featureMap.shape[1], n = featureMap.shape[2] * featureMap.shape[3];
        if (affinityMask.dim() != 3 || affinityMask.shape[0] != b || affinityMask.shape[1] != n || affinityMask.shape[2] != n)
            throw new WeakSegException($"PTC affinity mask must be [{b}, {n}, {n}]; got [{string.Join(", ", affinityMask.shape)}]");
        using var scope = torch.NewDisposeScope();
        var tokens = nn.functional.normalize(featureMap.reshape(b, d, n), p: 2, dim: 1, eps: 1e-8);
        var similarity = torch.matmul(tokens.transpose(1, 2), tokens).abs();                 // [B, N, N]
        using var one = 1.0.ToScalar();
        using var half = 0.5.ToScalar();
        using var positiveLabel = 1L.ToScalar();
        using var negativeLabel = 0L.ToScalar();
        var positive = affinityMask.eq(positiveLabel).to_type(similarity.dtype);
        var negative = affinityMask.eq(negativeLabel).to_type(similarity.dtype);
        var positiveTerm = similarity.mul(positive).sum().div(positive.sum().add(one));
        var negativeTerm = similarity.mul(negative).sum().div(negative.sum().add(one));
        var loss = positiveTerm.neg().add(one).mul(half).add(negativeTerm.mul(half));
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Background/foreground-balanced cross entropy (get_seg_loss): 0.5·(CE over background pixels + CE over foreground
    /// pixels), ignoring <paramref name="ignoreIndex"/>. pred [B, C+1, H, W] logits, label [B, H, W] → scalar.
    /// See <see cref="SegmentationLossReduction"/> for empty halves.
    /// </summary>
    public static Tensor Segmentation(Tensor prediction, Tensor label, SegmentationLossReduction reduction = SegmentationLossReduction.Reference,
        long ignoreIndex = 255)
    {
        if (prediction.dim() != 4 || label.dim() != 3 || label.shape[0] != prediction.shape[0]
            || label.shape[1] != prediction.shape[2] || label.shape[2] != prediction.shape[3])
            throw new WeakSegException($"segmentation loss needs logits [B, C, H, W] and labels [B, H, W] of the same size; got [{string.Join(", ", prediction.shape)}] and [{string.Join(", ", label.shape)}]");
        using var scope = torch.NewDisposeScope();
        var target = label.to_type(ScalarType.Int64);
        using var ignore = ignoreIndex.ToScalar();
        using var backgroundLabel0 = 0L.ToScalar();
        var isBackground = target.eq(backgroundLabel0);
        var isIgnored = target.eq(ignore);
        var backgroundLabel = target.masked_fill(isBackground.logical_not(), ignore);
        var foregroundLabel = target.masked_fill(isBackground, ignore);
        using var half = 0.5.ToScalar();
        Tensor loss;
        if (reduction == SegmentationLossReduction.Reference)
        {
            var bg = nn.functional.cross_entropy(prediction, backgroundLabel, ignore_index: ignoreIndex);
            var fg = nn.functional.cross_entropy(prediction, foregroundLabel, ignore_index: ignoreIndex);
            loss = bg.add(fg).mul(half);
        }
        else
        {
            using var eps = 1e-6.ToScalar();
            var bgCe = nn.functional.cross_entropy(prediction, backgroundLabel, ignore_index: ignoreIndex, reduction: nn.Reduction.None);
            var fgCe = nn.functional.cross_entropy(prediction, foregroundLabel, ignore_index: ignoreIndex, reduction: nn.Reduction.None);
            var bgCount = isBackground.sum().to_type(prediction.dtype);
            var fgCount = isBackground.logical_or(isIgnored).logical_not().sum().to_type(prediction.dtype);
            var bg = bgCe.sum().div(bgCount.add(eps));
            var fg = fgCe.sum().div(fgCount.add(eps));
            loss = bg.add(fg).mul(half);
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>(background pixels, foreground pixels) of a label map, ignoring <paramref name="ignoreIndex"/>.</summary>
    public static (long Background, long Foreground) CountBackgroundForeground(Tensor label, long ignoreIndex = 255)
    {
        using var scope = torch.NewDisposeScope();
        using var ignore = ignoreIndex.ToScalar();
        using var zero = 0L.ToScalar();
        long background = label.eq(zero).sum().item<long>();
        long ignored = label.eq(ignore).sum().item<long>();
        return (background, label.numel() - background - ignored);
    }

    /// <summary>
    /// Class-token contrast (CTCLoss_neg). Rows are view-major: student row v·B + i is view v of image i (V student views: 2
    /// global + local crops), teacher row k·B + i is global view k (2 views). With ℓ_kj = exp(t_k·s_j / τ) and Σ_neg the sum of
    /// ℓ over the views with flag 0: per image Σ_k Σ_{j positive} −log(ℓ_kj / (ℓ_kj + Σ_neg + 1e-4)) (+ the reference's extra
    /// term), divided by 2·(n_pos + 1e-4); mean over images. student [V·B, K], teacher [2·B, K], flags [B, V] → scalar.
    /// </summary>
    public static Tensor ClassTokenContrast(Tensor student, Tensor teacher, Tensor flags, double temperature,
        CtcLossVariant variant = CtcLossVariant.Reference)
    {
        if (flags.dim() != 2) throw new WeakSegException($"CTC flags must be [B, views]; got [{string.Join(", ", flags.shape)}]");
        long b = flags.shape[0], views = flags.shape[1];
        if (student.dim() != 2 || student.shape[0] != views * b || teacher.dim() != 2 || teacher.shape[0] != 2 * b || teacher.shape[1] != student.shape[1])
            throw new WeakSegException($"CTC needs student [{views}·{b}, K] and teacher [2·{b}, K]; got [{string.Join(", ", student.shape)}] and [{string.Join(", ", teacher.shape)}]");
        if (!(temperature > 0)) throw new WeakSegException($"CTC temperature must be > 0 (got {temperature})");
        using var scope = torch.NewDisposeScope();
        using var invTemperature = (1.0 / temperature).ToScalar();
        using var eps = 1e-4.ToScalar();
        using var one = 1.0.ToScalar();
        var s = student.reshape(views, b, -1).permute(1, 0, 2);                                  // [B, V, K]
        var t = teacher.reshape(2, b, -1).permute(1, 0, 2);                                      // [B, 2, K]
        var logits = torch.matmul(t, s.transpose(1, 2)).mul(invTemperature).exp();               // [B, 2, V]
        using var zero = 0.0.ToScalar();
        var positive = flags.to_type(logits.dtype).ne(zero).to_type(logits.dtype).unsqueeze(1);  // [B, 1, V]
        var negativeSum = logits.mul(positive.neg().add(one)).sum(2, keepdim: true);             // [B, 2, 1]
        var terms = logits.div(logits.add(negativeSum).add(eps)).log().neg().mul(positive);     // [B, 2, V]
        var perImage = terms.sum(new long[] { 1, 2 });                                           // [B]
        if (variant == CtcLossVariant.Reference)
            perImage = perImage.add(negativeSum.add(one).add(eps).log().sum(new long[] { 1, 2 }));   // −log(1/(1+Σneg+ε)) per teacher view
        using var two = 2.0.ToScalar();
        var count = positive.sum(new long[] { 1, 2 }).add(eps);                                  // [B]
        return perImage.div(two).div(count).mean().MoveToOuterDisposeScope();
    }
}
