using WeakSeg.Models.Vit;
using WeakSeg.Training;

namespace WeakSeg.Methods.WeakTr;

/// <summary>How the K·H self-attention maps are weighted before they refine the coarse CAM (WeakTr paper Table 4).</summary>
public enum WeakTrFusion
{
    /// <summary>Baseline "mean-sum": every head has weight 1, so ĈA and P̂A are the plain average of all K·H maps (no FFN).</summary>
    MeanSum,

    /// <summary>Adaptive attention fusion: W = Pooling(A) per image, W' = FFN(W) (paper eq. 3). The method's default.</summary>
    Aaf,

    /// <summary>"w/ rand. fixed W": W is a randomly initialised, never-trained buffer [1, K·H]; W' = FFN(W) with the trained FFN.</summary>
    FixedRandom,
}

/// <summary>Pooling that turns each [T, T] attention map into the scalar W_i (paper eq. 3; Table 9 compares both).</summary>
public enum WeakTrPooling
{
    /// <summary>Global average pooling (paper appendix A.1 default). Note: a softmax attention map averages to exactly 1/T.</summary>
    Average,

    /// <summary>Global max pooling (Table 9: same mIoU as average).</summary>
    Max,
}

/// <summary>
/// WeakTr end-to-end CAM generation (paper §3.1, appendix A.1). Defaults are the paper's values; values not stated in the paper
/// are marked "unverified" and exist to be overridden.
/// </summary>
public sealed record WeakTrConfig : IMethodConfig<WeakTrConfig>
{
    /// <summary>The paper's setup (appendix A.1): DeiT-S/16 at 224, AAF with an 18-wide FFN.</summary>
    public static WeakTrConfig Paper => new();

    /// <summary>The small ViT of <see cref="MethodRegistry.CpuBackbone"/> with an FFN of <see cref="CpuFfnHidden"/>.</summary>
    public static WeakTrConfig Cpu => new() { Backbone = MethodRegistry.CpuBackbone, FfnHidden = CpuFfnHidden };

    /// <summary>The FFN hidden width of the cpu preset: K·H / 4, as the paper's 18 = 72 / 4 for DeiT-S (12 blocks × 6 heads).</summary>
    public static int CpuFfnHidden => Math.Max(1, MethodRegistry.CpuBackbone.Depth * MethodRegistry.CpuBackbone.NumHeads / 4);

    /// <summary>Foreground classes = class tokens C (PASCAL VOC: 20; §3.1.1 "C learnable class tokens").</summary>
    public int NumClasses { get; init; } = 20;

    /// <summary>Backbone: DeiT-S/16 (appendix A.1). <see cref="VitConfig.NumClassTokens"/> is overridden by <see cref="NumClasses"/>.</summary>
    public VitConfig Backbone { get; init; } = VitConfig.Small;

    /// <summary>Head-weighting scheme; AAF is the method, the others are the Table 4 ablations.</summary>
    public WeakTrFusion Fusion { get; init; } = WeakTrFusion.Aaf;

    /// <summary>Pooling of each attention map (appendix A.1: global average pooling; Table 9: max gives the same result).</summary>
    public WeakTrPooling Pooling { get; init; } = WeakTrPooling.Average;

    /// <summary>Hidden width of the 2-layer FFN (appendix A.1 and Table 8: 18 is best; = K·H / 4 for DeiT-S's 72 heads).</summary>
    public int FfnHidden { get; init; } = 18;

    /// <summary>Biases in the FFN's two Linear layers. The paper does not say; the public reference code has none (unverified).</summary>
    public bool FfnBias { get; init; }

    /// <summary>
    /// Stop gradients at the attention maps entering the fusion, so L_fine trains the FFN and not the backbone through A.
    /// The paper only requires the fusion weights to be trained by L_fine (§3.1.3); the public reference code detaches (unverified).
    /// </summary>
    public bool DetachAttention { get; init; } = true;

    /// <summary>
    /// Use ReLU(CAM_coarse) with gradients stopped in eq. 6, as MCTformer-V2 fuses ReLU(PatchCAM) detached (the paper adopts
    /// "the same method as MCTformer", §3.1.2; shared/specs README). false = raw coarse CAM with gradients (unverified variant).
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

    /// <summary>
    /// Trainer options for this schedule: steps = epochs × batches per epoch, warm-up = warm-up epochs × batches per epoch,
    /// AdamW with the paper's decay and linearly scaled learning rate. Other fields come from <paramref name="baseOptions"/>.
    /// </summary>
    public TrainerOptions ToTrainerOptions(long batchesPerEpoch, TrainerOptions? baseOptions = null)
    {
        if (batchesPerEpoch < 1) throw new WeakSegException($"batches per epoch must be ≥ 1 (got {batchesPerEpoch})");
        this.EnsureValid();
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

    public WeakTrConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };

    public WeakTrConfig WithImageSize(int imageSize) => this with { Backbone = Backbone with { ImageSize = imageSize } };

    /// <summary>Problems with this configuration, each naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = this.CommonErrors();
        if (!Enum.IsDefined(Fusion)) errors.Add($"Fusion must be mean-sum, aaf or fixed-random (got {(int)Fusion})");
        if (!Enum.IsDefined(Pooling)) errors.Add($"Pooling must be average or max (got {(int)Pooling})");
        if (FfnHidden < 1) errors.Add($"FfnHidden must be ≥ 1 (got {FfnHidden})");
        if (BatchSize < 1) errors.Add($"BatchSize must be ≥ 1 (got {BatchSize})");
        if (!(LearningRatePer512 > 0) || double.IsInfinity(LearningRatePer512)) errors.Add($"LearningRatePer512 must be a positive number (got {LearningRatePer512})");
        if (!(WeightDecay >= 0)) errors.Add($"WeightDecay must be ≥ 0 (got {WeightDecay})");
        if (Epochs < 1) errors.Add($"Epochs must be ≥ 1 (got {Epochs})");
        if (WarmupEpochs < 0 || WarmupEpochs > Epochs) errors.Add($"WarmupEpochs must be in [0, Epochs = {Epochs}] (got {WarmupEpochs})");
        if (!(MinLearningRate >= 0)) errors.Add($"MinLearningRate must be ≥ 0 (got {MinLearningRate})");
        if (!(WarmupStartLearningRate >= 0)) errors.Add($"WarmupStartLearningRate must be ≥ 0 (got {WarmupStartLearningRate})");
        return errors;
    }

    /// <summary>Parses the CLI spelling of a fusion scheme: mean-sum, aaf, fixed-random (case-insensitive; '_' accepted for '-').</summary>
    public static WeakTrFusion ParseFusion(string text) => text.Trim().ToLowerInvariant().Replace('_', '-') switch
    {
        "mean-sum" or "meansum" => WeakTrFusion.MeanSum,
        "aaf" => WeakTrFusion.Aaf,
        "fixed-random" or "fixedrandom" or "rand-fixed" => WeakTrFusion.FixedRandom,
        _ => throw new WeakSegException($"unknown WeakTr fusion '{text}' (expected mean-sum, aaf or fixed-random)"),
    };

    /// <summary>The CLI spelling of a fusion scheme.</summary>
    public static string FusionName(WeakTrFusion fusion) => fusion switch
    {
        WeakTrFusion.MeanSum => "mean-sum",
        WeakTrFusion.Aaf => "aaf",
        WeakTrFusion.FixedRandom => "fixed-random",
        _ => throw new ArgumentOutOfRangeException(nameof(fusion)),
    };
}
