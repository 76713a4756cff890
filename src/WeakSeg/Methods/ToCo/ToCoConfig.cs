using WeakSeg.Models.Vit;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;

namespace WeakSeg.Methods.ToCo;

/// <summary>A loss weight and the first (0-based) training step at which it applies; before that step the term is left out.</summary>
public sealed record LossWeight(double Weight, long StartStep = 0)
{
    /// <summary>The weight at <paramref name="step"/>: 0 before <see cref="StartStep"/>.</summary>
    public double At(long step) => step >= StartStep ? Weight : 0.0;
}

/// <summary>
/// ToCo (Ru et al., CVPR 2023) model, label and loss settings. <see cref="Paper"/> holds the official VOC values
/// (scripts/dist_train_voc_seg_neg.py: ViT-B/16, 448 crops, batch 4, 20k iterations); <see cref="Cpu"/> is a small
/// from-scratch setting for the built-in benchmark on two cores.
/// Not part of the loss here: the dense-CRF energy regulariser (weight 0.05, needs a bilateral filter).
/// </summary>
public sealed record ToCoConfig : IMethodConfig<ToCoConfig>, IMethodTrainerSchedule
{
    /// <summary>Foreground classes C (VOC 20), from the dataset (0 in presets); the decoder predicts C + 1 with background first.</summary>
    public int NumClasses { get; init; }

    /// <summary>ViT backbone. Paper: ViT-B/16 with bicubic position-embedding resizing on every forward, no drop path.</summary>
    public VitConfig Backbone { get; init; } = VitConfig.Base with { DropPathRate = 0.0, PositionEmbeddingResize = PositionEmbeddingResize.BicubicSize };

    /// <summary>Block whose tokens feed the aux classifier (negative = from the end). Paper: −3 (block 9 of 12).</summary>
    public int AuxLayer { get; init; } = -3;

    /// <summary>Width of the LargeFOV head's two 3×3 convolutions (paper 512).</summary>
    public int DecoderWidth { get; init; } = 512;

    /// <summary>Dilation (and padding) of the LargeFOV 3×3 convolutions (paper 5).</summary>
    public int DecoderDilation { get; init; } = 5;

    /// <summary>Training crop side (paper 448).</summary>
    public int CropSize { get; init; } = 448;

    /// <summary>Upper CAM threshold: the top of the ignore band and the background level of L_h (paper 0.7).</summary>
    public double HighThreshold { get; init; } = 0.7;

    /// <summary>Lower CAM threshold: the bottom of the ignore band and the background level of L_l (paper 0.25).</summary>
    public double LowThreshold { get; init; } = 0.25;

    /// <summary>Single background threshold for evaluation labels (paper 0.5).</summary>
    public double BackgroundThreshold { get; init; } = 0.5;

    /// <summary>Threshold order of the CAM labels (reference: ToCo's).</summary>
    public CamLabelRule LabelRule { get; init; } = CamLabelRule.ToCo;

    /// <summary>Scales of the in-training multi-scale + flip CAM (paper 1.0, 0.5, 1.5; scale 1 is always included).</summary>
    public IReadOnlyList<double> CamScales { get; init; } = [1.0, 0.5, 1.5];

    /// <summary>Pixel-adaptive refinement of the segmentation labels (paper: 6 dilations, 10 iterations, w1 0.3, w2 0.01).</summary>
    public ParConfig Par { get; init; } = ParConfig.Default;

    /// <summary>PAR runs at 1/ParDownScale of the crop (paper 2).</summary>
    public int ParDownScale { get; init; } = 2;

    /// <summary>Multi-label soft margin on the final classifier (paper 1.0 from step 0).</summary>
    public LossWeight Classification { get; init; } = new(1.0);

    /// <summary>Multi-label soft margin on the aux classifier (paper 1.0 from step 0).</summary>
    public LossWeight AuxClassification { get; init; } = new(1.0);

    /// <summary>Patch-token contrast (paper 0.2 from step 0).</summary>
    public LossWeight PatchContrast { get; init; } = new(0.2);

    /// <summary>Segmentation on PAR-refined labels (paper 0.1 after iteration 2000, i.e. from 0-based step 2001).</summary>
    public LossWeight Segmentation { get; init; } = new(0.1, 2001);

    /// <summary>
    /// Class-token contrast (CTC, <see cref="ToCoTraining.ClassContrastTerm"/>): a DINO projection head on the class tokens of two
    /// global views and <see cref="LocalCropCount"/> local crops, contrasted with an EMA teacher head. Paper on (the official
    /// script always computes it); off builds no projection heads.
    /// </summary>
    public bool UseCtc { get; init; } = true;

    /// <summary>CTC loss weight (paper w_ctc 0.5 from iteration 0).</summary>
    public LossWeight ClassContrast { get; init; } = new(0.5);

    /// <summary>CTC temperature τ (paper 0.5 on VOC; the COCO script hard-codes 1.0).</summary>
    public double ClassContrastTemperature { get; init; } = 0.5;

    /// <summary>Whether the CTC loss keeps the reference's for/else extra term (reference: yes).</summary>
    public CtcLossVariant ClassContrastVariant { get; init; } = CtcLossVariant.Reference;

    /// <summary>EMA momentum of the teacher projection head, updated before every CTC forward (paper 0.9, constant).</summary>
    public double ProjectorTeacherMomentum { get; init; } = 0.9;

    /// <summary>Projection head: hidden width (paper 2048).</summary>
    public int ProjectorHiddenDim { get; init; } = 2048;

    /// <summary>Projection head: bottleneck width before the L2 normalisation (paper 256).</summary>
    public int ProjectorBottleneckDim { get; init; } = 256;

    /// <summary>Projection head: output width of the weight-normalised last layer (paper 1024).</summary>
    public int ProjectorOutDim { get; init; } = 1024;

    /// <summary>Local crops per image (paper ncrops − 2 = 8).</summary>
    public int LocalCropCount { get; init; } = 8;

    /// <summary>Side of a local crop for <see cref="CropSize"/> crops (paper local_crop_size 96); other input sides scale it (<see cref="LocalCropSizeFor"/>).</summary>
    public int LocalCropSize { get; init; } = 96;

    /// <summary>A local crop is negative (flag 0) when its mean region level (0/1/2) is ≤ this (paper 0.2).</summary>
    public double NegativeCropMeanRegion { get; init; } = 0.2;

    /// <summary>The second global view (paper global_view2: RandomResizedCrop scale 0.4–1, flip 0.5, colour jitter p 0.8).</summary>
    public RandomViewOptions GlobalView { get; init; } = new() { MinAreaScale = 0.4, ColorJitterProbability = 0.8 };

    /// <summary>The image the local crops are cut from (paper local_view: the training crop with flip 0.5 and colour jitter p 0.8, no resize).</summary>
    public RandomViewOptions LocalView { get; init; } = new() { MinAreaScale = 1.0, MinAspectRatio = 1.0, MaxAspectRatio = 1.0, ColorJitterProbability = 0.8 };

    /// <summary>
    /// Reference quirk (true): the local-crop source is flipped independently of the training image the region map comes from, so
    /// half the time the crops are placed on the mirror image of the region map. False: the source is never flipped, so each crop
    /// covers the region it was placed for.
    /// </summary>
    public bool LocalViewFlipsIndependently { get; init; } = true;

    /// <summary>How the segmentation loss reduces its background and foreground halves (reference: ToCo's means).</summary>
    public SegmentationLossReduction SegmentationReduction { get; init; } = SegmentationLossReduction.Reference;

    /// <summary>
    /// Leave the segmentation term out of a step whose refined labels have no background or no foreground pixel (where the
    /// reference loss is NaN and would stop training). The part "seg_skipped" reports 1 for such steps.
    /// </summary>
    public bool SkipSegmentationWithoutBackgroundOrForeground { get; init; } = true;

    /// <summary>Backbone learning rate after warm-up (paper 6e-5).</summary>
    public double LearningRate { get; init; } = 6e-5;

    /// <summary>Learning-rate multiplier of the classifiers and the decoder (paper 10).</summary>
    public double HeadLearningRateScale { get; init; } = 10.0;

    /// <summary>Linear warm-up steps (paper 1500).</summary>
    public long WarmupSteps { get; init; } = 1500;

    /// <summary>Warm-up starts at this fraction of the rate (paper warmup_lr 1e-6).</summary>
    public double WarmupRatio { get; init; } = 1e-6;

    /// <summary>Poly exponent, counted from step 0 (paper 0.9).</summary>
    public double PolyPower { get; init; } = 0.9;

    /// <summary>AdamW weight decay (paper 0.01).</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Training steps (paper 20 000).</summary>
    public long Steps { get; init; } = 20_000;

    /// <summary>Images per step (paper 2 GPUs × 2 = 4).</summary>
    public int BatchSize { get; init; } = 4;

    /// <summary>What error messages call this configuration.</summary>
    public string Title => "ToCo";

    /// <summary><see cref="BackgroundThreshold"/>: ToCo's <c>--bkg_thre</c> (VOC 0.5, rulixiang/ToCo scripts/dist_train_voc_seg_neg.py),
    /// the single threshold of its evaluation labels (cam_to_label with ignore_mid off).</summary>
    public PresetThreshold PseudoLabelThreshold => new(BackgroundThreshold, "model.background_threshold, ToCo's --bkg_thre (official VOC 0.5, rulixiang/ToCo scripts/dist_train_voc_seg_neg.py)");

    /// <summary>This configuration for <paramref name="numClasses"/> foreground classes (the dataset decides it).</summary>
    public ToCoConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };

    /// <summary>
    /// This configuration with training crops of <paramref name="imageSize"/> (the backbone's position grid follows, and the local
    /// crops keep their share of the crop: <see cref="LocalCropSizeFor"/>).
    /// </summary>
    public ToCoConfig WithImageSize(int imageSize) =>
        this with { CropSize = imageSize, Backbone = Backbone with { ImageSize = imageSize }, LocalCropSize = LocalCropSizeFor(imageSize) };

    /// <summary>
    /// The local-crop side for training images of side <paramref name="imageSide"/>: <see cref="LocalCropSize"/> at
    /// <see cref="CropSize"/>; otherwise the same share of the side (paper 96 of 448), rounded down to a multiple of the patch size
    /// and at least one patch.
    /// </summary>
    public int LocalCropSizeFor(long imageSide)
    {
        if (imageSide == CropSize || CropSize <= 0) return LocalCropSize;
        int patch = Math.Max(1, Backbone.PatchSize);
        long scaled = LocalCropSize * imageSide / CropSize / patch * patch;
        return (int)Math.Max(patch, scaled);
    }

    public static ToCoConfig Paper => new();

    /// <summary>
    /// Two-core setting: a 4-block ViT (D 128, patch 8, 96 crops) from scratch, aux layer −2 (¾ depth), a 128-wide decoder,
    /// single-scale (+ flip) training CAM, class-token contrast off (with <c>model.use_ctc=true</c>: 8 local crops of 24 px, a
    /// 256-wide projection head), 1500 steps of 8 images with the stage thresholds scaled like the step count
    /// (segmentation from step 150, warm-up 100), a higher rate for a randomly initialised encoder, and the masked
    /// segmentation reduction (MoRe's count + 1e-6) so small crops without background never stop a run.
    /// </summary>
    public static ToCoConfig Cpu => new()
    {
        Backbone = VitConfig.Cpu128x4 with { PositionEmbeddingResize = PositionEmbeddingResize.BicubicSize },
        AuxLayer = -2,
        DecoderWidth = 128,
        CropSize = 96,
        CamScales = [1.0],
        Segmentation = new LossWeight(0.1, 150),
        SegmentationReduction = SegmentationLossReduction.CountEpsilon,
        UseCtc = false,
        ProjectorHiddenDim = 256,
        ProjectorBottleneckDim = 64,
        ProjectorOutDim = 256,
        LocalCropSize = 24,
        LearningRate = 2e-4,
        WarmupSteps = 100,
        Steps = 1500,
        BatchSize = 8,
    };

    /// <summary>The backbone actually built: one class token.</summary>
    public VitConfig BackboneConfig => Backbone with { NumClassTokens = 1 };

    /// <summary>Labels of the patch-token contrast and the segmentation CAM: two thresholds with the ignore band.</summary>
    public CamLabelOptions TokenLabelOptions => new(BackgroundThreshold, HighThreshold, LowThreshold, IgnoreMid: true, LabelRule);

    /// <summary>Evaluation labels: one background threshold.</summary>
    public CamLabelOptions EvaluationLabelOptions => new(BackgroundThreshold, HighThreshold, LowThreshold, IgnoreMid: false, LabelRule);

    /// <summary>
    /// Trainer options of the official schedule: AdamW (0.9, 0.999, eps 1e-8, decay <see cref="WeightDecay"/>), linear warm-up
    /// from <see cref="WarmupRatio"/>·rate, then poly counted from step 0 (<see cref="ScheduleKind.PolyFromStart"/>).
    /// The 10× head rate comes from <see cref="ToCoTrainable.LearningRateScale"/>. Other fields from <paramref name="baseOptions"/>.
    /// Every parameter is decayed, biases and norm weights included, as the reference.
    /// </summary>
    public TrainerOptions ToTrainerOptions(TrainerOptions? baseOptions = null)
    {
        this.EnsureValidBesidesClassCount();   // the schedule does not depend on K
        var o = baseOptions ?? new TrainerOptions();
        return o with
        {
            Steps = Steps,
            BatchSize = BatchSize,
            BaseLr = LearningRate,
            MinLr = 0.0,
            WarmupStartLr = LearningRate * WarmupRatio,
            WarmupSteps = Math.Min(WarmupSteps, Steps),
            WeightDecay = WeightDecay,
            Beta1 = 0.9,
            Beta2 = 0.999,
            Eps = 1e-8,
            Optimizer = OptimizerKind.AdamW,
            Schedule = ScheduleKind.PolyFromStart,
            PolyPower = PolyPower,
            NoWeightDecayNames = [], DecayAllParameters = true,
        };
    }

    /// <summary>Problems with this configuration, each naming the field and value; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = MethodConfigChecks.ClassCountErrors(NumClasses).ToList();
        errors.AddRange(BackboneConfig.Validate().Select(e => "Backbone." + e));
        if (AuxLayer < -Backbone.Depth || AuxLayer >= Backbone.Depth)
            errors.Add($"AuxLayer must name a block: -{Backbone.Depth}..{Backbone.Depth - 1} (got {AuxLayer})");
        if (DecoderWidth < 1) errors.Add($"DecoderWidth must be ≥ 1 (got {DecoderWidth})");
        if (DecoderDilation < 1) errors.Add($"DecoderDilation must be ≥ 1 (got {DecoderDilation})");
        if (CropSize < Backbone.PatchSize) errors.Add($"CropSize must be ≥ the patch size {Backbone.PatchSize} (got {CropSize})");
        if (!(LowThreshold < HighThreshold)) errors.Add($"thresholds out of order: LowThreshold ({LowThreshold}) must be below HighThreshold ({HighThreshold})");
        if (CamScales.Count == 0 || CamScales.Any(s => !(s > 0) || double.IsInfinity(s)))
            errors.Add($"CamScales must be positive numbers (got [{string.Join(", ", CamScales)}])");
        errors.AddRange(Par.Validate().Select(e => "Par." + e));
        if (ParDownScale < 1) errors.Add($"ParDownScale must be ≥ 1 (got {ParDownScale})");
        if (UseCtc) errors.AddRange(ClassContrastErrors());
        foreach (var (name, w) in new[] { ("Classification", Classification), ("AuxClassification", AuxClassification), ("PatchContrast", PatchContrast), ("Segmentation", Segmentation), ("ClassContrast", ClassContrast) })
        {
            if (!(w.Weight >= 0) || double.IsInfinity(w.Weight)) errors.Add($"{name} weight must be a finite number ≥ 0 (got {w.Weight})");
            if (w.StartStep < 0) errors.Add($"{name} start step must be ≥ 0 (got {w.StartStep})");
        }
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) errors.Add($"LearningRate must be a positive number (got {LearningRate})");
        if (!(HeadLearningRateScale > 0) || double.IsInfinity(HeadLearningRateScale)) errors.Add($"HeadLearningRateScale must be a positive number (got {HeadLearningRateScale})");
        if (WarmupSteps < 0) errors.Add($"WarmupSteps must be ≥ 0 (got {WarmupSteps})");
        if (!(WarmupRatio >= 0 && WarmupRatio <= 1)) errors.Add($"WarmupRatio must be in [0, 1] (got {WarmupRatio})");
        if (!(PolyPower > 0) || double.IsInfinity(PolyPower)) errors.Add($"PolyPower must be a positive number (got {PolyPower})");
        if (!(WeightDecay >= 0)) errors.Add($"WeightDecay must be ≥ 0 (got {WeightDecay})");
        if (Steps < 1) errors.Add($"Steps must be ≥ 1 (got {Steps})");
        if (BatchSize < 1) errors.Add($"BatchSize must be ≥ 1 (got {BatchSize})");
        return errors;
    }

    IEnumerable<string> ClassContrastErrors()
    {
        if (!(ClassContrastTemperature > 0) || double.IsInfinity(ClassContrastTemperature))
            yield return $"ClassContrastTemperature must be a positive number (got {ClassContrastTemperature})";
        if (!(ProjectorTeacherMomentum >= 0 && ProjectorTeacherMomentum <= 1)) yield return $"ProjectorTeacherMomentum must be in [0, 1] (got {ProjectorTeacherMomentum})";
        foreach (var (name, v) in new[] { ("ProjectorHiddenDim", ProjectorHiddenDim), ("ProjectorBottleneckDim", ProjectorBottleneckDim), ("ProjectorOutDim", ProjectorOutDim), ("LocalCropCount", LocalCropCount) })
            if (v < 1) yield return $"{name} must be ≥ 1 (got {v})";
        int margin = LocalCropSize / 2;
        long interior = Math.Max(0, CropSize - 2L * margin);
        if (LocalCropSize < Backbone.PatchSize || LocalCropSize >= CropSize)
            yield return $"LocalCropSize must be at least the patch size {Backbone.PatchSize} and below CropSize {CropSize} (got {LocalCropSize})";
        else if (interior * interior < LocalCropCount)
            yield return $"LocalCropCount {LocalCropCount} exceeds the {interior * interior} pixels a {LocalCropSize}-pixel crop can be centred on in a {CropSize} crop";
        if (!(NegativeCropMeanRegion >= 0 && NegativeCropMeanRegion <= 2)) yield return $"NegativeCropMeanRegion must be in [0, 2] (got {NegativeCropMeanRegion})";
        foreach (var e in GlobalView.Validate(nameof(GlobalView))) yield return e;
        foreach (var e in LocalView.Validate(nameof(LocalView))) yield return e;
    }

    /// <summary>Throws a <see cref="WeakSegException"/> listing every problem.</summary>
    public void EnsureValid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid ToCo configuration: " + string.Join("; ", errors));
    }
}
