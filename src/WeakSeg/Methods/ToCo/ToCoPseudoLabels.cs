using TorchSharp;
using WeakSeg.Training;
using WeakSeg.Refinement.Par;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>Which threshold order <see cref="ToCoPseudoLabels.CamToLabel"/> follows.</summary>
public enum CamLabelRule
{
    /// <summary>
    /// ToCo's cam_to_label (reference default): v ≤ bkg → 0 first, then, with the ignore band, v ≤ high → ignore and v ≤ low → 0.
    /// When bkg &gt; high the band (high, bkg] stays background.
    /// </summary>
    ToCo,

    /// <summary>
    /// MoRe/FSR's cam_to_label (the corrected order): with the ignore band only v ≤ high → ignore then v ≤ low → 0 (the
    /// background threshold is not applied); without it only v ≤ bkg → 0.
    /// </summary>
    MoRe,
}

/// <summary>Thresholds of the two-threshold CAM labels.</summary>
/// <param name="Background">single threshold used without the ignore band (VOC 0.5)</param>
/// <param name="High">upper edge of the ignore band (VOC 0.7)</param>
/// <param name="Low">lower edge of the ignore band (VOC 0.25)</param>
/// <param name="IgnoreMid">true: v ≤ low → background, low &lt; v ≤ high → ignore, v &gt; high → class</param>
/// <param name="Rule">threshold order (ToCo reference or MoRe)</param>
/// <param name="IgnoreIndex">label of ignored pixels</param>
public sealed record CamLabelOptions(double Background = 0.5, double High = 0.7, double Low = 0.25, bool IgnoreMid = true,
    CamLabelRule Rule = CamLabelRule.ToCo, long IgnoreIndex = 255)
{
    /// <summary>Throws a <see cref="WeakSegException"/> when the ignore band is empty or reversed (low ≥ high).</summary>
    public void EnsureValid()
    {
        if (IgnoreMid && !(Low < High))
            throw new WeakSegException($"CAM label thresholds out of order: low ({Low}) must be below high ({High})");
        if (!double.IsFinite(Background) || !double.IsFinite(High) || !double.IsFinite(Low))
            throw new WeakSegException($"CAM label thresholds must be finite numbers (background {Background}, high {High}, low {Low})");
    }
}

/// <summary>
/// ToCo's pseudo-label helpers (utils/camutils.py), pure functions: two-threshold CAM labels with the crop box, the token
/// affinity target, and the PAR-refined labels with two background levels.
/// Boxes are [B, 4] int64 rows (row0, row1, col0, col1), half-open, as ToCo's img_box; null = the whole image.
/// </summary>
public static class ToCoPseudoLabels
{
    static readonly float[] PixelMean = [123.675f, 116.28f, 103.53f];
    static readonly float[] PixelStd = [58.395f, 57.12f, 57.375f];

    /// <summary>
    /// CAM → labels. valid_cam = cam ⊙ image labels (absent classes zeroed); v = max over classes, label = argmax + 1, then the
    /// thresholds of <paramref name="options"/>; pixels outside <paramref name="imageBox"/> → ignore.
    /// cam [B, C, h, w], classLabels [B, C] → (valid_cam [B, C, h, w], label [B, h, w] int64).
    /// </summary>
    public static (Tensor ValidCam, Tensor Label) CamToLabel(Tensor cam, Tensor classLabels, CamLabelOptions options, Tensor? imageBox = null)
    {
        options.EnsureValid();
        if (cam.dim() != 4 || classLabels.dim() != 2 || classLabels.shape[0] != cam.shape[0] || classLabels.shape[1] != cam.shape[1])
            throw new WeakSegException($"cam_to_label needs cam [B, C, h, w] and labels [B, C]; got [{string.Join(", ", cam.shape)}] and [{string.Join(", ", classLabels.shape)}]");
        using var scope = torch.NewDisposeScope();
        var validCam = cam.mul(classLabels.to_type(cam.dtype).unsqueeze(-1).unsqueeze(-1));
        var (value, index) = validCam.max(1);
        var label = index.add(StableOne);
        using var zero = 0L.ToScalar();
        using var ignore = options.IgnoreIndex.ToScalar();
        using var bkg = options.Background.ToScalar();
        using var high = options.High.ToScalar();
        using var low = options.Low.ToScalar();
        if (options.Rule == CamLabelRule.ToCo || !options.IgnoreMid) label.masked_fill_(value.le(bkg), zero);
        if (options.IgnoreMid)
        {
            label.masked_fill_(value.le(high), ignore);
            label.masked_fill_(value.le(low), zero);
        }
        if (imageBox is not null) label = IgnoreOutsideBox(label, imageBox, options.IgnoreIndex);
        validCam.MoveToOuterDisposeScope();
        return (validCam, label.MoveToOuterDisposeScope());
    }

    static readonly Scalar StableOne = 1L.ToScalar();

    /// <summary>Pixels outside each image's box set to <paramref name="ignoreIndex"/>. label [B, h, w], box [B, 4] → new [B, h, w].</summary>
    public static Tensor IgnoreOutsideBox(Tensor label, Tensor imageBox, long ignoreIndex)
    {
        long b = label.shape[0], h = label.shape[1], w = label.shape[2];
        if (imageBox.dim() != 2 || imageBox.shape[0] != b || imageBox.shape[1] != 4)
            throw new WeakSegException($"image box must be [{b}, 4] (row0, row1, col0, col1); got [{string.Join(", ", imageBox.shape)}]");
        using var scope = torch.NewDisposeScope();
        var boxes = imageBox.to_type(ScalarType.Int64).cpu().data<long>().ToArray();
        var inside = torch.zeros(new[] { b, h, w }, ScalarType.Bool, label.device);
        using var yes = true.ToScalar();
        for (long i = 0; i < b; i++)
        {
            long r0 = Math.Clamp(boxes[4 * i], 0, h), r1 = Math.Clamp(boxes[4 * i + 1], 0, h);
            long c0 = Math.Clamp(boxes[4 * i + 2], 0, w), c1 = Math.Clamp(boxes[4 * i + 3], 0, w);
            if (r1 > r0 && c1 > c0) inside[i].narrow(0, r0, r1 - r0).narrow(1, c0, c1 - c0).fill_(yes);
        }
        using var ignore = ignoreIndex.ToScalar();
        return label.masked_fill(inside.logical_not(), ignore).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Token affinity target: aff[b, i, j] = 1 if label_i = label_j else 0 (labels flattened row-major), and
    /// <paramref name="ignoreIndex"/> where either token is ignored or i = j. label [B, h, w] → [B, N, N] int64.
    /// </summary>
    public static Tensor LabelToAffinityMask(Tensor label, long ignoreIndex = 255)
    {
        if (label.dim() != 3) throw new WeakSegException($"label_to_aff_mask needs labels [B, h, w]; got [{string.Join(", ", label.shape)}]");
        using var scope = torch.NewDisposeScope();
        long b = label.shape[0], n = label.shape[1] * label.shape[2];
        var flat = label.reshape(b, n);
        var affinity = flat.unsqueeze(2).eq(flat.unsqueeze(1)).to_type(ScalarType.Int64);     // [B, N, N]
        using var ignoreScalar = ignoreIndex.ToScalar();
        var ignored = flat.eq(ignoreScalar);                                                    // [B, N]
        var eitherIgnored = ignored.unsqueeze(2).logical_or(ignored.unsqueeze(1));
        var diagonal = torch.eye(n, dtype: ScalarType.Bool, device: label.device).unsqueeze(0);
        affinity.masked_fill_(eitherIgnored.logical_or(diagonal), ignoreScalar);
        return affinity.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Normalised images back to [0, 1] as ToCo's denormalize_img2: x·std + mean on the 0..255 scale (ImageNet statistics),
    /// truncated to an integer (the uint8 cast; values are clamped to 0..255 first), divided by 255. [B, 3, H, W] → [B, 3, H, W].
    /// </summary>
    public static Tensor DenormalizeImages(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3) throw new WeakSegException($"images must be [B, 3, H, W]; got [{string.Join(", ", images.shape)}]");
        using var scope = torch.NewDisposeScope();
        var std = torch.tensor(PixelStd, device: images.device).reshape(1, 3, 1, 1);
        var mean = torch.tensor(PixelMean, device: images.device).reshape(1, 3, 1, 1);
        using var divisor = 255.0.ToScalar();
        using var black = 0.0.ToScalar();
        return images.to_type(ScalarType.Float32).mul(std).add_(mean).clamp_(black, divisor).trunc_().div_(divisor).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="StepTimings"/> section of <see cref="RefineCamsWithBackground"/> (in training: the PAR-refined segmentation labels).</summary>
    public const string ParSection = "PAR-refined labels";

    /// <summary>
    /// PAR-refined labels with two background levels (refine_cams_with_bkg_v2). Per image: the image is downscaled by
    /// <paramref name="downScale"/> (bilinear); two stacks [bg = high; valid_cam] and [bg = low; valid_cam] are downscaled,
    /// restricted to the background and the present classes, softmaxed over channels and refined by PAR; each is upsampled
    /// back (bilinear) and argmaxed → L_h, L_l (pixels outside the box → ignore). Result: L_h, ignore where L_h = 0, and 0
    /// where L_h + L_l = 0. images01 [B, 3, H, W] in [0, 1], validCam [B, C, H, W], classLabels [B, C] → [B, H, W] int64.
    /// </summary>
    public static Tensor RefineCamsWithBackground(PixelAdaptiveRefinement par, Tensor images01, Tensor validCam, Tensor classLabels,
        double highThreshold, double lowThreshold, Tensor? imageBox = null, int downScale = 2, long ignoreIndex = 255)
    {
        if (!(lowThreshold < highThreshold))
            throw new WeakSegException($"refinement background levels out of order: low ({lowThreshold}) must be below high ({highThreshold})");
        if (downScale < 1) throw new WeakSegException($"PAR down-scale must be ≥ 1 (got {downScale})");
        if (images01.dim() != 4 || validCam.dim() != 4 || validCam.shape[0] != images01.shape[0]
            || validCam.shape[2] != images01.shape[2] || validCam.shape[3] != images01.shape[3])
            throw new WeakSegException($"refinement needs images [B, 3, H, W] and CAMs [B, C, H, W] of the same size; got [{string.Join(", ", images01.shape)}] and [{string.Join(", ", validCam.shape)}]");
        using var timing = StepTimings.Section(ParSection);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long b = images01.shape[0], h = images01.shape[2], w = images01.shape[3];
        if (h / downScale < 1 || w / downScale < 1) throw new WeakSegException($"image {h}×{w} is too small for PAR down-scale {downScale}");
        var cams = validCam.to_type(ScalarType.Float32);
        var labels = classLabels.cpu().to_type(ScalarType.Float32).data<float>().ToArray();
        long c = classLabels.shape[1];
        double[] levels = [highThreshold, lowThreshold];

        var labelHigh = new List<Tensor>();
        var labelLow = new List<Tensor>();
        for (long i = 0; i < b; i++)
        {
            var keys = new List<long> { 0 };
            for (long k = 0; k < c; k++) if (labels[i * c + k] != 0) keys.Add(k + 1);
            var keyIndex = torch.tensor(keys.ToArray(), device: cams.device);
            var presentIndex = torch.tensor(keys.Skip(1).Select(k => k - 1).ToArray(), dtype: ScalarType.Int64, device: cams.device);
            var present = cams.narrow(0, i, 1).index_select(1, presentIndex);                 // [1, K-1, H, W]
            var refined = ParLabels.ArgmaxPerLevel(par, images01.narrow(0, i, 1), present, levels, downScale);
            labelHigh.Add(keyIndex.index_select(0, refined[0].flatten()).reshape(1, h, w));
            labelLow.Add(keyIndex.index_select(0, refined[1].flatten()).reshape(1, h, w));
        }
        var lh = torch.cat(labelHigh, 0);
        var ll = torch.cat(labelLow, 0);
        if (imageBox is not null)
        {
            lh = IgnoreOutsideBox(lh, imageBox, ignoreIndex);
            ll = IgnoreOutsideBox(ll, imageBox, ignoreIndex);
        }
        var result = ParLabels.CombineLevels(lh, ll, ignoreIndex);
        return result.MoveToOuterDisposeScope();
    }
}
