namespace WeakSeg.Refinement;

/// <summary>
/// Parameters of the fully connected CRF (Krähenbühl and Koltun, NIPS 2011) as the seed repositories call pydensecrf:
/// energy E(x) = Σ_i U_i(x_i) + Σ_{i&lt;j} μ(x_i, x_j) [w_g k_g(f_i, f_j) + w_b k_b(f_i, f_j)] with Potts μ,
/// k_g = exp(−|p_i − p_j|² / 2 sxy_g²) and k_b = exp(−|p_i − p_j|² / 2 sxy_b² − |I_i − I_j|² / 2 srgb²), both
/// symmetrically normalised (pydensecrf's default NORMALIZE_SYMMETRIC). Defaults: PSA's <c>crf_inference</c>
/// (jiwoon-ahn/psa tool/imutils.py), which MCTformer's PSA stage uses: gaussian sxy 3 compat 3, bilateral sxy 80
/// srgb 13 compat 10, t = 10.
/// </summary>
public sealed record DenseCrfConfig
{
    /// <summary>Mean-field iterations (t = 10 in every seed repo's crf_inference).</summary>
    public int Iterations { get; init; } = 10;

    /// <summary>Spatial standard deviation of the smoothness (Gaussian) kernel, in pixels (PSA: sxy = 3).</summary>
    public float GaussianSxy { get; init; } = 3f;

    /// <summary>Potts weight of the smoothness kernel (PSA: compat = 3). 0 disables the kernel.</summary>
    public float GaussianWeight { get; init; } = 3f;

    /// <summary>Spatial standard deviation of the appearance (bilateral) kernel, in pixels (PSA: sxy = 80).</summary>
    public float BilateralSxy { get; init; } = 80f;

    /// <summary>Colour standard deviation of the bilateral kernel, in 0..255 RGB units (PSA: srgb = 13).</summary>
    public float BilateralSrgb { get; init; } = 13f;

    /// <summary>Potts weight of the bilateral kernel (PSA: compat = 10). 0 disables the kernel.</summary>
    public float BilateralWeight { get; init; } = 10f;

    /// <summary>Probabilities are clipped to [clip, 1] before −log (pydensecrf unary_from_softmax clip = 1e-5).</summary>
    public float ProbabilityClip { get; init; } = 1e-5f;

    /// <summary>
    /// Probability of the given label for <see cref="DenseCrf.RefineLabels"/>; the other K−1 labels share 1 − p
    /// (pydensecrf unary_from_labels, zero_unsure = False; the seed repos' crf_inference_label use gt_prob = 0.7).
    /// </summary>
    public float GroundTruthProbability { get; init; } = 0.7f;

    /// <summary>
    /// Largest |Σ_k p_k − 1| accepted per pixel by <see cref="DenseCrf.Refine"/>; pixels within it are renormalised,
    /// beyond it the input is rejected. 1e-3 is ~100× the rounding error of a float32 softmax or of bilinear
    /// interpolation of probabilities over 256 labels, and far below what logits or raw CAM scores give.
    /// </summary>
    public float ProbabilitySumTolerance { get; init; } = 1e-3f;

    /// <summary>Threads used for lattice build and message passing; null = all processors.</summary>
    public int? MaxThreads { get; init; }

    /// <summary>PSA / MCTformer (PSA stage) crf_inference: gaussian 3/3, bilateral 80/13/10, t = 10. Same as <c>new()</c>.</summary>
    public static DenseCrfConfig Psa => new();

    /// <summary>
    /// MCTformer seg/tool/imutils.py crf_inference_inf (and WeakTr tool/imutils.py crf_inference_label, gt_prob 0.7):
    /// gaussian sxy 4 compat 3, bilateral sxy 83 srgb 5 compat 3, t = 10.
    /// </summary>
    public static DenseCrfConfig MctFormerSeg => new()
    {
        GaussianSxy = 4f, GaussianWeight = 3f, BilateralSxy = 83f, BilateralSrgb = 5f, BilateralWeight = 3f,
    };

    /// <summary>
    /// ToCo tools/infer_seg_voc.py and infer_seg_coco_ddp.py DenseCRF(...): iter_max 10, pos_w 1, pos_xy_std 1,
    /// bi_w 4, bi_xy_std 121, bi_rgb_std 5.
    /// </summary>
    public static DenseCrfConfig ToCo => new()
    {
        Iterations = 10, GaussianSxy = 1f, GaussianWeight = 1f, BilateralSxy = 121f, BilateralSrgb = 5f, BilateralWeight = 4f,
    };

    /// <summary>
    /// WeakTr's DeepLab retraining code (deeplabv1-resnet38 tools/densecrf.py crf_inference_coco): gaussian sxy 1 compat 3,
    /// bilateral sxy 67 srgb 3 compat 4, t = 10 (the common DeepLab COCO setting pos_w 3, pos_xy_std 1, bi_w 4, bi_xy_std 67, bi_rgb_std 3).
    /// </summary>
    public static DenseCrfConfig DeepLabCoco => new()
    {
        GaussianSxy = 1f, GaussianWeight = 3f, BilateralSxy = 67f, BilateralSrgb = 3f, BilateralWeight = 4f,
    };

    /// <summary>Preset by name (psa, mctformer-seg, toco, deeplab-coco), case-insensitive.</summary>
    public static DenseCrfConfig FromPreset(string name) => name.Trim().ToLowerInvariant() switch
    {
        "psa" or "default" => Psa,
        "mctformer-seg" or "mctformer" => MctFormerSeg,
        "toco" => ToCo,
        "deeplab-coco" or "weaktr-coco" => DeepLabCoco,
        _ => throw new WeakSegException($"unknown dense CRF preset '{name}' (known: {string.Join(", ", PresetNames)})"),
    };

    /// <summary>Names accepted by <see cref="FromPreset"/>.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["psa", "mctformer-seg", "toco", "deeplab-coco"];

    /// <summary>Problems with the values, each naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Iterations < 0) errors.Add($"{nameof(Iterations)} must be ≥ 0, got {Iterations}");
        CheckPositive(errors, nameof(GaussianSxy), GaussianSxy);
        CheckPositive(errors, nameof(BilateralSxy), BilateralSxy);
        CheckPositive(errors, nameof(BilateralSrgb), BilateralSrgb);
        if (!(GaussianWeight >= 0 && float.IsFinite(GaussianWeight))) errors.Add($"{nameof(GaussianWeight)} must be a finite number ≥ 0, got {GaussianWeight}");
        if (!(BilateralWeight >= 0 && float.IsFinite(BilateralWeight))) errors.Add($"{nameof(BilateralWeight)} must be a finite number ≥ 0, got {BilateralWeight}");
        if (!(ProbabilityClip > 0 && ProbabilityClip < 1)) errors.Add($"{nameof(ProbabilityClip)} must be in (0, 1), got {ProbabilityClip}");
        if (!(GroundTruthProbability > 0 && GroundTruthProbability < 1)) errors.Add($"{nameof(GroundTruthProbability)} must be in (0, 1), got {GroundTruthProbability}");
        if (!(ProbabilitySumTolerance >= 0 && ProbabilitySumTolerance < 1)) errors.Add($"{nameof(ProbabilitySumTolerance)} must be in [0, 1), got {ProbabilitySumTolerance}");
        if (MaxThreads is < 1) errors.Add($"{nameof(MaxThreads)} must be ≥ 1 or null, got {MaxThreads}");
        return errors;
    }

    static void CheckPositive(List<string> errors, string name, float value)
    {
        if (!(value > 0 && float.IsFinite(value))) errors.Add($"{name} must be a finite number > 0, got {value}");
    }
}
