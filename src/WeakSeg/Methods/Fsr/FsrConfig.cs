using WeakSeg.Methods.ToCo;
using WeakSeg.Models.Vit;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;

namespace WeakSeg.Methods.Fsr;

/// <summary>How the masked view's tokens are chosen.</summary>
public enum MaskStrategy
{
    /// <summary>Uniform noise only: a random top-r (the warm-up phase).</summary>
    Random,

    /// <summary>Noise + 1 where the label-restricted aux CAM lies strictly inside (low, high): uncertain blocks first.</summary>
    Uncertain,
}

/// <summary>How the certain token (token 0, the one cer.FSR distils) is pooled from the patch tokens.</summary>
public enum CertainTokenPooling
{
    /// <summary>The certain-feature aggregator: cross-attention blocks from a learnable class token (the method).</summary>
    Aggregator,

    /// <summary>Global average pooling of the unmasked patch tokens (the paper's Table 4 "GAP" row).</summary>
    Gap,

    /// <summary>Global max pooling of the unmasked patch tokens (Table 4 "GMP").</summary>
    Gmp,
}

/// <summary>
/// FSR (He et al., AAAI 2024, "Progressive Feature Self-Reinforcement") on the ToCo base. <see cref="Paper"/> holds the official
/// VOC values (Jessie459/feature-self-reinforcement train_voc.py: ViT-B/16, 448 crops, 2 views, 20k iterations of 8 images);
/// <see cref="Cpu"/> is a small from-scratch setting for the built-in benchmark. Where the released code differs from the
/// paper the code is the default (block masking, no layer scale) except the aggregator's attention mask, which follows the
/// paper (Eq. 7) by default; <see cref="AggregatorAttentionMask"/> false is the released behaviour.
/// Not part of the loss: the dense-CRF energy regulariser (weight 0.05, needs a bilateral filter).
/// </summary>
public sealed record FsrConfig : IMethodConfig<FsrConfig>, IMethodTrainerSchedule
{
    /// <summary>Foreground classes C (VOC 20), from the dataset (0 in presets).</summary>
    public int NumClasses { get; init; }

    /// <summary>ViT-B/16 without a class token in the blocks; position embedding resized bicubically; drop path 0.1.</summary>
    public VitConfig Backbone { get; init; } = VitConfig.Base with { DropPathRate = 0.1, PositionEmbeddingResize = PositionEmbeddingResize.BicubicSize };

    /// <summary>Block of the aux classifier (−3).</summary>
    public int AuxLayer { get; init; } = -3;

    /// <summary>Cross-attention blocks of the certain-feature aggregator (cls_depth 2).</summary>
    public int AggregatorDepth { get; init; } = 2;

    /// <summary>
    /// The paper's attention mask (Eq. 7): the aggregator attends to unmasked tokens only (default). false = the released code,
    /// which attends to every token, mask tokens included.
    /// </summary>
    public bool AggregatorAttentionMask { get; init; } = true;

    /// <summary>How token 0 is made (aggregator; GAP and GMP are the paper's ablation baselines).</summary>
    public CertainTokenPooling CertainTokenPooling { get; init; } = CertainTokenPooling.Aggregator;

    /// <summary>Layer scale γ of the aggregator's two branches with this initial value (first release: 0.1); null = none (released code).</summary>
    public double? AggregatorLayerScale { get; init; }

    /// <summary>DINO projector hidden width (2048).</summary>
    public int ProjectorHiddenDim { get; init; } = 2048;

    /// <summary>DINO projector bottleneck width (256).</summary>
    public int ProjectorBottleneckDim { get; init; } = 256;

    /// <summary>DINO projector output K (4096).</summary>
    public int ProjectorOutDim { get; init; } = 4096;

    /// <summary>LargeFOV width (512).</summary>
    public int DecoderWidth { get; init; } = 512;

    /// <summary>LargeFOV dilation (5).</summary>
    public int DecoderDilation { get; init; } = 5;

    /// <summary>Training crop side (448).</summary>
    public int CropSize { get; init; } = 448;

    /// <summary>Masking ratio r: ceil(r·blocks) blocks of view 2 are masked (0.4).</summary>
    public double MaskRatio { get; init; } = 0.4;

    /// <summary>Side of a mask block in patches: 4 (the code's 64-px blocks at patch 16); 1 = patch-level masking as in the paper.</summary>
    public int MaskBlockPatches { get; init; } = 4;

    /// <summary>Lower edge of the uncertain CAM band β_l (0.2).</summary>
    public double MaskLowThreshold { get; init; } = 0.2;

    /// <summary>Upper edge of the uncertain CAM band β_h (0.7).</summary>
    public double MaskHighThreshold { get; init; } = 0.7;

    /// <summary>Steps of purely random masking before the uncertainty-guided phase (max_iters / 5 = 4000).</summary>
    public long RandomMaskingSteps { get; init; } = 4000;

    /// <summary>Masking strategy after <see cref="RandomMaskingSteps"/> (uncertain; random = the ablation's random masking).</summary>
    public MaskStrategy MaskStrategy { get; init; } = MaskStrategy.Uncertain;

    /// <summary>PTC and segmentation-label thresholds (0.7 / 0.25); evaluation background 0.5.</summary>
    public double HighThreshold { get; init; } = 0.7;

    /// <inheritdoc cref="HighThreshold"/>
    public double LowThreshold { get; init; } = 0.25;

    /// <summary>Evaluation background threshold (0.5).</summary>
    public double BackgroundThreshold { get; init; } = 0.5;

    /// <summary>The pipeline's pseudo-label threshold: FSR's CAM-label background threshold (official VOC 0.5, COCO 0.45).</summary>
    public PresetThreshold PseudoLabelThreshold => new(BackgroundThreshold, "model.background_threshold, FSR's CAM-label background threshold (official VOC 0.5, infer_voc.py / utils/evaluate.py on the ToCo base)");

    /// <summary>In-training CAM scales (1.0, 0.5, 1.5).</summary>
    public IReadOnlyList<double> CamScales { get; init; } = [1.0, 0.5, 1.5];

    /// <summary>PAR settings (as ToCo).</summary>
    public ParConfig Par { get; init; } = ParConfig.Default;

    /// <summary>PAR runs at 1/ParDownScale of the crop (2).</summary>
    public int ParDownScale { get; init; } = 2;

    /// <summary>Two-view augmentation.</summary>
    public RandomViewOptions Views { get; init; } = new();

    /// <summary>Classifier loss (1.0).</summary>
    public LossWeight Classification { get; init; } = new(1.0);

    /// <summary>Aux classifier loss (1.0).</summary>
    public LossWeight AuxClassification { get; init; } = new(1.0);

    /// <summary>Patch-token contrast (0.2).</summary>
    public LossWeight PatchContrast { get; init; } = new(0.2);

    /// <summary>Segmentation on PAR-refined labels (0.1; 0 for the first 2000 iterations).</summary>
    public LossWeight Segmentation { get; init; } = new(0.1, 2000);

    /// <summary>FSR's get_seg_loss is ToCo's (NaN without background or foreground pixels).</summary>
    public SegmentationLossReduction SegmentationReduction { get; init; } = SegmentationLossReduction.Reference;

    /// <summary>Leave the segmentation term out of a step without background or foreground pixels (as <see cref="ToCoConfig"/>).</summary>
    public bool SkipSegmentationWithoutBackgroundOrForeground { get; init; } = true;

    /// <summary>cer.FSR: aggregated-token distillation across views (w_class 0.1).</summary>
    public LossWeight CertainDistillation { get; init; } = new(0.1);

    /// <summary>cer.FSR on (the method). With unc.FSR also off (<see cref="UseUncertainDistillation"/>) the step is the ToCo base:
    /// one view, no masking, no teacher forward, no centre or teacher update (ablation "base").</summary>
    public bool UseCertainDistillation { get; init; } = true;

    /// <summary>unc.FSR on (the method). Masking of view 2 and the teacher run while either FSR term is on.</summary>
    public bool UseUncertainDistillation { get; init; } = true;

    /// <summary>Either FSR term is on: the step makes two views, masks view 2 and runs (and updates) the EMA teacher.</summary>
    public bool SelfDistillation => UseCertainDistillation || UseUncertainDistillation;

    /// <summary>unc.FSR: masked-token distillation (w_patch 0.1).</summary>
    public LossWeight UncertainDistillation { get; init; } = new(0.1);

    /// <summary>Student temperature τ_s (0.1).</summary>
    public double StudentTemperature { get; init; } = 0.1;

    /// <summary>Teacher temperature τ_t after the warm-up (0.07).</summary>
    public double TeacherTemperature { get; init; } = 0.07;

    /// <summary>Teacher temperature at step 0 (0.04), rising linearly over <see cref="TeacherTemperatureWarmupSteps"/>.</summary>
    public double WarmupTeacherTemperature { get; init; } = 0.04;

    /// <summary>Teacher temperature warm-up (max_iters / 8 = 2500).</summary>
    public long TeacherTemperatureWarmupSteps { get; init; } = 2500;

    /// <summary>EMA momentum of the two teacher centres (0.9).</summary>
    public double CenterMomentum { get; init; } = 0.9;

    /// <summary>Teacher EMA momentum at step 0, cosine-scheduled to 1 over the run (released code 0.9995, first release 0.996).</summary>
    public double TeacherMomentum { get; init; } = 0.9995;

    /// <summary>Separate starting momentum for the projector's teacher (the paper's projector schedule); null = <see cref="TeacherMomentum"/>.</summary>
    public double? ProjectorTeacherMomentum { get; init; }

    /// <summary>Backbone learning rate (6e-5); decoder, projector and classifiers get <see cref="HeadLearningRateScale"/>×.</summary>
    public double LearningRate { get; init; } = 6e-5;

    /// <summary>Head learning-rate multiplier (10).</summary>
    public double HeadLearningRateScale { get; init; } = 10.0;

    /// <summary>Warm-up steps (1500), linear from <see cref="WarmupRatio"/>·rate; then cosine to 0 (CosWarmupAdamW).</summary>
    public long WarmupSteps { get; init; } = 1500;

    /// <summary>Warm-up starts at this fraction of the rate (0.1).</summary>
    public double WarmupRatio { get; init; } = 0.1;

    /// <summary>AdamW weight decay (0.05), not on biases, 1-D parameters, pos_embed, cls_token, mask_token.</summary>
    public double WeightDecay { get; init; } = 0.05;

    /// <summary>Training steps (20 000).</summary>
    public long Steps { get; init; } = 20_000;

    /// <summary>Images per step (2 per GPU × 4 GPUs = 8), two views each.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>What error messages call this configuration.</summary>
    public string Title => "FSR";

    /// <summary>This configuration for <paramref name="numClasses"/> foreground classes.</summary>
    public FsrConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };

    /// <summary>This configuration with training crops of <paramref name="imageSize"/> (the backbone's position grid follows).</summary>
    public FsrConfig WithImageSize(int imageSize) => this with { CropSize = imageSize, Backbone = Backbone with { ImageSize = imageSize } };

    /// <summary>The official VOC settings.</summary>
    public static FsrConfig Paper => new();

    /// <summary>
    /// Two-core setting, as <see cref="ToCoConfig.Cpu"/>: a 4-block ViT (D 128, patch 8, 96 crops → 12×12 grid) from scratch, aux
    /// layer −2, 128-wide decoder, a 256-wide projector with K = 256, single-scale CAM, 2×2-patch mask blocks (a 6×6 block grid),
    /// 1500 steps of 8 images with the stage steps scaled like the step count (random masking 300, temperature warm-up 188,
    /// segmentation from 150), teacher momentum 0.996 (the first release's value; 0.9995 barely moves a teacher in 1500 steps).
    /// </summary>
    public static FsrConfig Cpu => new()
    {
        Backbone = VitConfig.Cpu128x4 with { PositionEmbeddingResize = PositionEmbeddingResize.BicubicSize },
        AuxLayer = -2,
        ProjectorHiddenDim = 256,
        ProjectorBottleneckDim = 64,
        ProjectorOutDim = 256,
        DecoderWidth = 128,
        CropSize = 96,
        MaskBlockPatches = 2,
        RandomMaskingSteps = 300,
        CamScales = [1.0],
        Segmentation = new LossWeight(0.1, 150),
        SegmentationReduction = SegmentationLossReduction.CountEpsilon,
        TeacherTemperatureWarmupSteps = 188,
        TeacherMomentum = 0.996,
        LearningRate = 2e-4,
        WarmupSteps = 100,
        Steps = 1500,
        BatchSize = 8,
    };

    /// <summary>The backbone actually built: one class token (it initialises the aggregator; the blocks never see it).</summary>
    public VitConfig BackboneConfig => Backbone with { NumClassTokens = 1 };

    /// <summary>Patch grid side of a training crop.</summary>
    public int GridSize => CropSize / Backbone.PatchSize;

    /// <summary>FSR's cam_to_label (MoRe order) with the ignore band: PTC and segmentation labels.</summary>
    public CamLabelOptions TokenLabelOptions => new(BackgroundThreshold, HighThreshold, LowThreshold, IgnoreMid: true, CamLabelRule.MoRe);

    /// <summary>The masking settings of this configuration.</summary>
    public MaskOptions Masking => new(MaskRatio, MaskBlockPatches, MaskLowThreshold, MaskHighThreshold);

    /// <summary>Teacher temperature of <paramref name="step"/>: np.linspace(warm-up, final, W)[step], then the final value.</summary>
    public double TeacherTemperatureAt(long step) => FsrLoss.TeacherTemperature(step, TeacherTemperatureWarmupSteps, WarmupTeacherTemperature, TeacherTemperature);

    /// <summary>
    /// Trainer options of the official schedule (CosWarmupAdamW): AdamW (0.9, 0.999, eps 1e-8, decay <see cref="WeightDecay"/>
    /// except biases, 1-D parameters, pos_embed, cls_token, mask_token), warm-up from <see cref="WarmupRatio"/>·rate, cosine to 0.
    /// </summary>
    public TrainerOptions ToTrainerOptions(TrainerOptions? baseOptions = null)
    {
        this.EnsureValidBesidesClassCount();   // the schedule does not depend on K
        var o = baseOptions ?? new TrainerOptions();
        return o with
        {
            Steps = Steps, BatchSize = BatchSize, BaseLr = LearningRate, MinLr = 0.0, WarmupStartLr = LearningRate * WarmupRatio,
            WarmupSteps = Math.Min(WarmupSteps, Steps), WeightDecay = WeightDecay, Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8,
            Optimizer = OptimizerKind.AdamW, Schedule = ScheduleKind.WarmupCosine,
            NoWeightDecayNames = ["pos_embed", "cls_token", "mask_token"], DecayAllParameters = false,
        };
    }

    /// <summary>Problems with this configuration, each naming the field and value; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = this.CommonErrors();
        int depth = Backbone.Depth;
        if (AuxLayer < -depth || AuxLayer >= depth) errors.Add($"AuxLayer must name a block: -{depth}..{depth - 1} (got {AuxLayer})");
        if (AggregatorDepth < 1) errors.Add($"AggregatorDepth must be ≥ 1 (got {AggregatorDepth})");
        if (AggregatorLayerScale is { } gamma && !double.IsFinite(gamma)) errors.Add($"AggregatorLayerScale must be a finite number (got {gamma})");
        foreach (var (name, v) in new[] { ("ProjectorHiddenDim", ProjectorHiddenDim), ("ProjectorBottleneckDim", ProjectorBottleneckDim), ("ProjectorOutDim", ProjectorOutDim), ("DecoderWidth", DecoderWidth), ("DecoderDilation", DecoderDilation) })
            if (v < 1) errors.Add($"{name} must be ≥ 1 (got {v})");
        if (CropSize < Backbone.PatchSize) errors.Add($"CropSize must be ≥ the patch size {Backbone.PatchSize} (got {CropSize})");
        else errors.AddRange(Masking.Validate(GridSize, GridSize));
        if (RandomMaskingSteps < 0) errors.Add($"RandomMaskingSteps must be ≥ 0 (got {RandomMaskingSteps})");
        if (!(LowThreshold < HighThreshold)) errors.Add($"thresholds out of order: LowThreshold ({LowThreshold}) must be below HighThreshold ({HighThreshold})");
        if (CamScales.Count == 0 || CamScales.Any(s => !(s > 0) || double.IsInfinity(s))) errors.Add($"CamScales must be positive numbers (got [{string.Join(", ", CamScales)}])");
        errors.AddRange(Par.Validate().Select(e => "Par." + e));
        if (ParDownScale < 1) errors.Add($"ParDownScale must be ≥ 1 (got {ParDownScale})");
        errors.AddRange(Views.Validate("Views"));
        foreach (var (name, w) in new[] { ("Classification", Classification), ("AuxClassification", AuxClassification), ("PatchContrast", PatchContrast), ("Segmentation", Segmentation), ("CertainDistillation", CertainDistillation), ("UncertainDistillation", UncertainDistillation) })
        {
            if (!(w.Weight >= 0) || double.IsInfinity(w.Weight)) errors.Add($"{name} weight must be a finite number ≥ 0 (got {w.Weight})");
            if (w.StartStep < 0) errors.Add($"{name} start step must be ≥ 0 (got {w.StartStep})");
        }
        foreach (var (name, t) in new[] { ("StudentTemperature", StudentTemperature), ("TeacherTemperature", TeacherTemperature), ("WarmupTeacherTemperature", WarmupTeacherTemperature) })
            if (!(t > 0) || double.IsInfinity(t)) errors.Add($"{name} must be a positive number (got {t})");
        if (TeacherTemperatureWarmupSteps < 0) errors.Add($"TeacherTemperatureWarmupSteps must be ≥ 0 (got {TeacherTemperatureWarmupSteps})");
        if (!(CenterMomentum >= 0 && CenterMomentum <= 1)) errors.Add($"CenterMomentum must be in [0, 1] (got {CenterMomentum})");
        if (!(TeacherMomentum >= 0 && TeacherMomentum <= 1)) errors.Add($"TeacherMomentum must be in [0, 1] (got {TeacherMomentum})");
        if (ProjectorTeacherMomentum is { } pm && !(pm >= 0 && pm <= 1)) errors.Add($"ProjectorTeacherMomentum must be in [0, 1] (got {pm})");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) errors.Add($"LearningRate must be a positive number (got {LearningRate})");
        if (!(HeadLearningRateScale > 0) || double.IsInfinity(HeadLearningRateScale)) errors.Add($"HeadLearningRateScale must be a positive number (got {HeadLearningRateScale})");
        if (WarmupSteps < 0) errors.Add($"WarmupSteps must be ≥ 0 (got {WarmupSteps})");
        if (!(WarmupRatio >= 0 && WarmupRatio <= 1)) errors.Add($"WarmupRatio must be in [0, 1] (got {WarmupRatio})");
        if (!(WeightDecay >= 0)) errors.Add($"WeightDecay must be ≥ 0 (got {WeightDecay})");
        if (Steps < 1) errors.Add($"Steps must be ≥ 1 (got {Steps})");
        if (BatchSize < 1) errors.Add($"BatchSize must be ≥ 1 (got {BatchSize})");
        return errors;
    }
}
