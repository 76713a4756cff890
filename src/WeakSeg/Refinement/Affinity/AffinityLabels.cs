using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Affinity;

/// <summary>How confident background / foreground pixels are picked from class maps.</summary>
public enum AffinityLabelMode
{
    /// <summary>Two thresholds on the maximum class score m: m &lt; Low → background, m ≥ High → its class, else 255.</summary>
    Thresholds,

    /// <summary>
    /// PSA: background scores (1 − m)^α at a low and a high power (optionally refined by the dense CRF, as PSA's la_crf/ha_crf);
    /// label = argmax at the low power, its background pixels → 255, then background wherever the high-power argmax is background.
    /// </summary>
    AlphaPowers,
}

/// <summary>Settings of <see cref="AffinityLabels.FromMaps"/>.</summary>
public sealed record AffinityLabelConfig
{
    /// <summary>PSA's construction (α powers with CRF) by default.</summary>
    public AffinityLabelMode Mode { get; init; } = AffinityLabelMode.AlphaPowers;

    /// <summary>Thresholds mode: below this maximum class score a pixel is confident background (ToCo's low threshold 0.25).</summary>
    public float LowThreshold { get; init; } = 0.25f;

    /// <summary>Thresholds mode: from this maximum class score on a pixel is confident foreground (ToCo's high threshold 0.7).</summary>
    public float HighThreshold { get; init; } = 0.7f;

    /// <summary>Low background power: its argmax gives the confident foreground. MCTformer: --low_alpha 1 (its run_psa.sh uses the
    /// "crf_1" maps); PSA infer_cls.py: 4.</summary>
    public float LowAlpha { get; init; } = 1f;

    /// <summary>High background power: its argmax gives the confident background. MCTformer: --high_alpha 12 ("crf_12"); PSA: 32.</summary>
    public float HighAlpha { get; init; } = 12f;

    /// <summary>AlphaPowers mode: refine both score sets with the dense CRF before the argmax (PSA and MCTformer do).</summary>
    public bool UseCrf { get; init; } = true;

    /// <summary>CRF kernels (PSA crf_inference).</summary>
    public DenseCrfConfig Crf { get; init; } = DenseCrfConfig.Psa;

    public void Validate()
    {
        if (!(LowThreshold >= 0 && HighThreshold <= 1 && LowThreshold <= HighThreshold))
            throw new WeakSegException($"affinity label thresholds must satisfy 0 ≤ low ≤ high ≤ 1 (got {LowThreshold}, {HighThreshold})");
        if (!(LowAlpha > 0 && HighAlpha >= LowAlpha && float.IsFinite(HighAlpha)))
            throw new WeakSegException($"affinity label powers must satisfy 0 < low α ≤ high α (got {LowAlpha}, {HighAlpha})");
        var errors = Crf.Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid dense CRF configuration: " + string.Join("; ", errors));
    }
}

/// <summary>Pair labels of a batch: float32 masks [B, P] over the pairs of <see cref="AffinityPairs.Indices"/>.</summary>
/// <param name="BackgroundPositive">both ends background</param>
/// <param name="ForegroundPositive">both ends the same foreground class</param>
/// <param name="Negative">different labels, neither 255</param>
public sealed record AffinityPairLabels(Tensor BackgroundPositive, Tensor ForegroundPositive, Tensor Negative);

/// <summary>
/// Affinity supervision from class maps (PSA, Ahn and Kwak CVPR 2018, Sec. 3.2): confident background and foreground regions,
/// the rest ignored (255); then pairwise labels on the feature grid (PSA voc12/data.py ExtractAffinityLabelInRadius).
/// </summary>
public static class AffinityLabels
{
    /// <summary>
    /// Label image (map resolution) with 0 = confident background, c = confident class c, 255 = unsure.
    /// <paramref name="image"/> (the maps' size) is needed only for the CRF of <see cref="AffinityLabelMode.AlphaPowers"/>.
    /// </summary>
    public static LabelMap FromMaps(CamMaps maps, RgbImage? image, AffinityLabelConfig? config = null)
    {
        config ??= new AffinityLabelConfig();
        config.Validate();
        int n = maps.PlaneSize;
        var labels = new byte[n];
        if (config.Mode == AffinityLabelMode.Thresholds)
        {
            var (max, arg) = maps.Classes.Length == 0 ? (new float[n], new byte[n]) : PseudoLabels.CamToLabel.MaxOverClasses(maps);
            for (int i = 0; i < n; i++)
                labels[i] = max[i] < config.LowThreshold ? (byte)0 : max[i] >= config.HighThreshold ? arg[i] : LabelMap.Ignore;
            return new LabelMap(maps.Width, maps.Height, labels);
        }
        if (config.UseCrf && image is null) throw new WeakSegException($"affinity labels of '{maps.Name}': the dense CRF needs the image");
        var low = ArgmaxWithPower(maps, image, config.LowAlpha, config);
        var high = ArgmaxWithPower(maps, image, config.HighAlpha, config);
        for (int i = 0; i < n; i++)
            labels[i] = high.Labels[i] == 0 ? (byte)0 : low.Labels[i] == 0 ? LabelMap.Ignore : low.Labels[i];
        return new LabelMap(maps.Width, maps.Height, labels);
    }

    static LabelMap ArgmaxWithPower(CamMaps maps, RgbImage? image, float alpha, AffinityLabelConfig config)
    {
        if (config.UseCrf)
            return CrfPostProcessing.RefineMaps(maps, image!, new CrfMapOptions { Background = MapBackground.Power, Alpha = alpha, Crf = config.Crf });
        int n = maps.PlaneSize, k = maps.Classes.Length;
        var scores = CrfPostProcessing.BackgroundAndMaps(maps, MapBackground.Power, alpha);
        var arg = new byte[n];
        for (int i = 0; i < n; i++)
        {
            float best = scores[i];
            for (int c = 1; c <= k; c++)
                if (scores[c * n + i] > best) { best = scores[c * n + i]; arg[i] = (byte)c; }
        }
        return CrfPostProcessing.PlaneIndicesToLabels(arg, maps);
    }

    /// <summary>
    /// Label images [B, H, W] (int64, 255 = ignore) reduced to the feature grid [B, h, w] by the most frequent value in each
    /// (H/h)×(W/w) cell, 255 counted as a value (first value wins ties). PSA pools the scores before the argmax; pooling the
    /// label one-hots is the same idea for stored label images. H and W must be multiples of h and w.
    /// </summary>
    public static Tensor Downsample(Tensor masks, int height, int width, int numClasses)
    {
        if (masks.dim() != 3) throw new WeakSegException($"label images must be [B, H, W]; got [{string.Join(", ", masks.shape)}]");
        long H = masks.shape[1], W = masks.shape[2];
        if (H % height != 0 || W % width != 0 || H / height != W / width)
            throw new WeakSegException($"label images {H}×{W} do not reduce to the {height}×{width} feature grid by one integer factor");
        int factor = (int)(H / height);
        using var scope = torch.NewDisposeScope();
        var ignoreSlot = numClasses + 1;
        var valid = masks.le(numClasses);
        var slots = torch.where(valid, masks, torch.full_like(masks, ignoreSlot));
        if (factor == 1) return masks.clone().MoveToOuterDisposeScope();
        var onehot = nn.functional.one_hot(slots, ignoreSlot + 1).permute(0, 3, 1, 2).to_type(ScalarType.Float32);   // [B, K+2, H, W]
        var pooled = nn.functional.avg_pool2d(onehot, factor, factor);                                                // [B, K+2, h, w]
        var mode = pooled.argmax(1);                                                                                  // [B, h, w]
        return torch.where(mode.eq(ignoreSlot), torch.full_like(mode, 255), mode).MoveToOuterDisposeScope();
    }

    /// <summary>Pair labels for grid labels [B, N] (int64, N = h·w, 255 = ignore) and pairs (from, to) [P] each.</summary>
    public static AffinityPairLabels PairLabels(Tensor gridLabels, Tensor from, Tensor to)
    {
        using var scope = torch.NewDisposeScope();
        var a = gridLabels.index_select(1, from);                 // [B, P]
        var b = gridLabels.index_select(1, to);                   // [B, P]
        var valid = a.ne(255).logical_and(b.ne(255));
        var same = a.eq(b);
        var bg = same.logical_and(a.eq(0)).to_type(ScalarType.Float32);
        var fg = same.logical_and(a.ne(0)).logical_and(valid).to_type(ScalarType.Float32);
        var neg = same.logical_not().logical_and(valid).to_type(ScalarType.Float32);
        return new AffinityPairLabels(bg.MoveToOuterDisposeScope(), fg.MoveToOuterDisposeScope(), neg.MoveToOuterDisposeScope());
    }
}
