using WeakSeg.Models.Vit;
using WeakSeg.Training;

namespace WeakSeg.Methods.WeakTr;

/// <summary>How the K·H self-attention maps are weighted before they refine the coarse CAM (WeakTr paper Table 4).</summary>
public enum WeakTrFusion
{
    /// <summary>Baseline "mean-sum": every head has weight 1, so ĈA and P̂A are the plain average of all K·H maps (no FFN).</summary>
    MeanSum,

    /// <summary>
    /// Adaptive attention fusion as the official code computes it: each block's attention-branch output o = proj(softmax(qkᵀ)v) is split
    /// into H groups of D/H channels, each (head map, channel) is pooled over the tokens, the feature FFN turns the D/H pooled values into
    /// one scalar per head map and the head FFN turns the K·H scalars into W' (sigmoid). The method's default.
    /// </summary>
    Aaf,

    /// <summary>"w/ rand. fixed W": W is a randomly initialised, never-trained buffer [1, K·H]; W' = head FFN(W) with the trained FFN.</summary>
    FixedRandom,

    /// <summary>
    /// The paper's eq. 3 read literally: W = Pool(A), one scalar per softmax attention map (global average or max over its T×T
    /// entries), fed to the head FFN (no feature FFN). Not what the official code does; with average pooling every W_i is exactly
    /// 1/T (a softmax row sums to 1), so W' is a learned per-head constant.
    /// </summary>
    PooledAttentionMaps,
}

/// <summary>Pooling over tokens that turns each head map's input into its descriptor (official <c>--pool-type</c>; paper Table 9).</summary>
public enum WeakTrPooling
{
    /// <summary>Global average pooling (the paper's appendix A.1).</summary>
    Average,

    /// <summary>Global max pooling (the official VOC and COCO training commands, <c>--pool-type max</c>; Table 9: same mIoU as average).</summary>
    Max,
}

/// <summary>How the D channels of a block's attention-branch output are split into H groups of D/H for the fusion.</summary>
public enum WeakTrFeatureGrouping
{
    /// <summary>
    /// Official: <c>.view(k, b, n, -1, h)</c>, so group h holds the interleaved channels h, h + H, h + 2H, … (after the output
    /// projection there is no per-head structure; this is a quirk of the official code).
    /// </summary>
    Interleaved,

    /// <summary>Corrected: group h holds the contiguous slice [h·D/H, (h + 1)·D/H), the layout of head h before the projection.</summary>
    Contiguous,
}

/// <summary>
/// WeakTr end-to-end CAM generation (paper §3.1, appendix A.1). Defaults are the paper's values; values not stated in the paper
/// are marked "unverified" and exist to be overridden.
/// </summary>
public sealed record WeakTrConfig : IMethodConfig<WeakTrConfig>
{
    /// <summary>The paper's setup (appendix A.1): DeiT-S/16 at 224, AAF with an 18-wide FFN.</summary>
    public static WeakTrConfig Paper => new();

    /// <summary>The small ViT of <see cref="VitConfig.Cpu128x4"/> (vit-cpu-128x4) with an FFN of <see cref="CpuFfnHidden"/>.</summary>
    public static WeakTrConfig Cpu => new() { Backbone = VitConfig.Cpu128x4, FfnHidden = CpuFfnHidden };

    /// <summary>The FFN hidden width of the cpu preset: K·H / 4, as the paper's 18 = 72 / 4 for DeiT-S (12 blocks × 6 heads).</summary>
    public static int CpuFfnHidden => Math.Max(1, VitConfig.Cpu128x4.Depth * VitConfig.Cpu128x4.NumHeads / 4);

    /// <summary>Foreground classes = class tokens C (VOC: 20, from the dataset, 0 in presets; §3.1.1 "C learnable class tokens").</summary>
    public int NumClasses { get; init; }

    /// <summary>Backbone: DeiT-S/16 (appendix A.1). <see cref="VitConfig.NumClassTokens"/> is overridden by <see cref="NumClasses"/>.</summary>
    public VitConfig Backbone { get; init; } = VitConfig.Small;

    /// <summary>Head-weighting scheme; AAF is the method, the others are the Table 4 ablations.</summary>
    public WeakTrFusion Fusion { get; init; } = WeakTrFusion.Aaf;

    /// <summary>Pooling over tokens (official training commands: <c>--pool-type max</c>; appendix A.1: average; Table 9: equal).</summary>
    public WeakTrPooling Pooling { get; init; } = WeakTrPooling.Max;

    /// <summary>
    /// Hidden width of the head FFN Linear(K·H → hidden) → ReLU → Linear(hidden → K·H) → Sigmoid (appendix A.1 and Table 8: 18 is
    /// best, = K·H / 4 for DeiT-S's 72 heads; the official VOC command's <c>--reduction 8</c> gives int(72 / 8) = 9).
    /// </summary>
    public int FfnHidden { get; init; } = 18;

    /// <summary>Biases in the head FFN's two Linear layers (official: none).</summary>
    public bool FfnBias { get; init; }

    /// <summary>
    /// feat_reduction of the official feature FFN Linear(D/H → D/H / FeatureReduction) → Linear(→ 1) (official default 8: DeiT-S
    /// 64 → 8 → 1). The hidden width is max(1, (D/H) / FeatureReduction).
    /// </summary>
    public int FeatureReduction { get; init; } = 8;

    /// <summary>Channel grouping of the attention-branch output into head maps (official: interleaved).</summary>
    public WeakTrFeatureGrouping FeatureGrouping { get; init; } = WeakTrFeatureGrouping.Interleaved;

    /// <summary>Pool over all T tokens, class tokens included (official, true), or over the N patch tokens only (false).</summary>
    public bool PoolClassTokens { get; init; } = true;

    /// <summary>
    /// Stop gradients at the attention maps and attention-branch features entering the fusion, so L_fine trains the fusion FFNs and
    /// not the backbone (official: detached).
    /// </summary>
    public bool DetachAttention { get; init; } = true;

    /// <summary>
    /// Use ReLU(CAM_coarse) with gradients stopped in eq. 6 (official: detached). false = raw coarse CAM with gradients (variant).
    /// </summary>
    public bool DetachCoarseCam { get; init; } = true;

    // ---- training schedule (appendix A.1), exposed for the CLI wiring ----

    /// <summary>Images per batch (appendix A.1: 64).</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Learning rate per 512 images in the linear scaling rule lr = 0.0004 × batch / 512 (appendix A.1).</summary>
    public double LearningRatePer512 { get; init; } = 4e-4;

    /// <summary>Peak learning rate after warm-up: <see cref="LearningRatePer512"/> × <see cref="BatchSize"/> / 512 (64 → 5e-5).</summary>
    public double LearningRate => LearningRatePer512 * BatchSize / 512.0;

    /// <summary>AdamW weight decay (appendix A.1: 0.05).</summary>
    public double WeightDecay { get; init; } = 0.05;

    /// <summary>Linear warm-up length in epochs (appendix A.1: 5), then cosine decay.</summary>
    public int WarmupEpochs { get; init; } = 5;

    /// <summary>Training epochs. Not in the paper; 60 as MCTformer's recipe (unverified).</summary>
    public int Epochs { get; init; } = 60;

    /// <summary>Learning rate at the end of the cosine decay. Not in the paper; DeiT's --min-lr 1e-5 (unverified).</summary>
    public double MinLearningRate { get; init; } = 1e-5;

    /// <summary>Learning rate at the start of the warm-up. Not in the paper; DeiT's --warmup-lr 1e-6 (unverified).</summary>
    public double WarmupStartLearningRate { get; init; } = 1e-6;

    /// <summary>The backbone configuration actually built (C = NumClasses class tokens).</summary>
    public VitConfig BackboneConfig => Backbone with { NumClassTokens = NumClasses };

    /// <summary>Number of fused attention maps K·H.</summary>
    public int NumAttentionHeads => Backbone.Depth * Backbone.NumHeads;

    /// <summary>D/H: channels per head map of the attention-branch output.</summary>
    public int FeatureChannels => Backbone.NumHeads > 0 ? Backbone.EmbedDim / Backbone.NumHeads : 0;

    /// <summary>Hidden width of the feature FFN: max(1, (D/H) / <see cref="FeatureReduction"/>).</summary>
    public int FeatureHidden => Math.Max(1, FeatureChannels / Math.Max(1, FeatureReduction));

    /// <summary>
    /// Trainer options for this schedule: steps = epochs × batches per epoch, warm-up = warm-up epochs × batches per epoch,
    /// AdamW with the paper's decay and linearly scaled learning rate. Other fields come from <paramref name="baseOptions"/>.
    /// </summary>
    public TrainerOptions ToTrainerOptions(long batchesPerEpoch, TrainerOptions? baseOptions = null)
    {
        if (batchesPerEpoch < 1) throw new WeakSegException($"batches per epoch must be ≥ 1 (got {batchesPerEpoch})");
        this.EnsureValidBesidesClassCount();   // the schedule does not depend on K
        var o = baseOptions ?? new TrainerOptions();
        return o with
        {
            Steps = Epochs * batchesPerEpoch,
            BatchSize = BatchSize,
            BaseLr = LearningRate,
            MinLr = Math.Min(MinLearningRate, LearningRate),
            WarmupStartLr = Math.Min(WarmupStartLearningRate, LearningRate),
            WarmupSteps = WarmupEpochs * batchesPerEpoch,
            WeightDecay = WeightDecay,
        };
    }

    string IMethodConfig.Title => "WeakTr";

    /// <summary>0.43: the background score of WeakTr's official VOC pseudo labels, hustvl/WeakTr docs/Training.md (commit 0ff9d9ae),
    /// <c>evaluation.py --t 43 --out-crf</c>, where evaluation.py divides --t by 100 and pads the maps with it as the background
    /// plane before the argmax. (COCO: --t 42.) Both presets.</summary>
    public PresetThreshold PseudoLabelThreshold => new(0.43, "WeakTr's official VOC pseudo labels: docs/Training.md, evaluation.py --t 43 (hustvl/WeakTr)");

    public WeakTrConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };

    public WeakTrConfig WithImageSize(int imageSize) => this with { Backbone = Backbone with { ImageSize = imageSize } };

    /// <summary>Problems with this configuration, each naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = this.CommonErrors();
        if (!Enum.IsDefined(Fusion)) errors.Add($"Fusion must be mean-sum, aaf, fixed-random or pooled-attention-maps (got {(int)Fusion})");
        if (!Enum.IsDefined(Pooling)) errors.Add($"Pooling must be average or max (got {(int)Pooling})");
        if (!Enum.IsDefined(FeatureGrouping)) errors.Add($"FeatureGrouping must be interleaved or contiguous (got {(int)FeatureGrouping})");
        if (FfnHidden < 1) errors.Add($"FfnHidden must be ≥ 1 (got {FfnHidden})");
        if (FeatureReduction < 1) errors.Add($"FeatureReduction must be ≥ 1 (got {FeatureReduction})");
        if (BatchSize < 1) errors.Add($"BatchSize must be ≥ 1 (got {BatchSize})");
        if (!(LearningRatePer512 > 0) || double.IsInfinity(LearningRatePer512)) errors.Add($"LearningRatePer512 must be a positive number (got {LearningRatePer512})");
        if (!(WeightDecay >= 0)) errors.Add($"WeightDecay must be ≥ 0 (got {WeightDecay})");
        if (Epochs < 1) errors.Add($"Epochs must be ≥ 1 (got {Epochs})");
        if (WarmupEpochs < 0 || WarmupEpochs > Epochs) errors.Add($"WarmupEpochs must be in [0, Epochs = {Epochs}] (got {WarmupEpochs})");
        if (!(MinLearningRate >= 0)) errors.Add($"MinLearningRate must be ≥ 0 (got {MinLearningRate})");
        if (!(WarmupStartLearningRate >= 0)) errors.Add($"WarmupStartLearningRate must be ≥ 0 (got {WarmupStartLearningRate})");
        return errors;
    }

    /// <summary>Parses the CLI spelling of a fusion scheme: mean-sum, aaf, fixed-random, pooled-attention-maps (case-insensitive;
    /// '_' accepted for '-').</summary>
    public static WeakTrFusion ParseFusion(string text) => text.Trim().ToLowerInvariant().Replace('_', '-') switch
    {
        "mean-sum" or "meansum" => WeakTrFusion.MeanSum,
        "aaf" => WeakTrFusion.Aaf,
        "fixed-random" or "fixedrandom" or "rand-fixed" => WeakTrFusion.FixedRandom,
        "pooled-attention-maps" or "pooled-maps" => WeakTrFusion.PooledAttentionMaps,
        _ => throw new WeakSegException($"unknown WeakTr fusion '{text}' (expected mean-sum, aaf, fixed-random or pooled-attention-maps)"),
    };

    /// <summary>The CLI spelling of a fusion scheme.</summary>
    public static string FusionName(WeakTrFusion fusion) => fusion switch
    {
        WeakTrFusion.MeanSum => "mean-sum",
        WeakTrFusion.Aaf => "aaf",
        WeakTrFusion.FixedRandom => "fixed-random",
        WeakTrFusion.PooledAttentionMaps => "pooled-attention-maps",
        _ => throw new ArgumentOutOfRangeException(nameof(fusion)),
    };
}
