using WeakSeg.Methods.ToCo;
using WeakSeg.Models.Vit;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;

namespace WeakSeg.Methods.MoRe;

/// <summary>A pair of CAM thresholds (foreground above <see cref="High"/>, background below <see cref="Low"/>); a tuple converts to it.</summary>
public sealed record ThresholdPair(double High, double Low)
{
    public static implicit operator ThresholdPair((double High, double Low) pair) => new(pair.High, pair.Low);
}

/// <summary>Which labels train MoRe's segmentation decoder.</summary>
public enum MoReSegmentationLabels
{
    /// <summary>PAR-refined two-level labels from the final classifier's multi-scale CAM (the official training scripts).</summary>
    Cam,

    /// <summary>The same PAR-refined two-level labels made from the multi-scale LAM (the paper: "LAM … used to train a segmentation decoder").</summary>
    Lam,
}

/// <summary>
/// MoRe (Yang et al., AAAI 2025) settings on the ToCo base. <see cref="Paper"/> holds the official VOC values
/// (scripts/train_voc.py, logs/voc_train.log); <see cref="Cpu"/> is the small from-scratch setting. MoRe drops ToCo's
/// class-token contrast; the dense-CRF energy regulariser (weight 0.05) is not part of the loss here.
/// </summary>
public sealed record MoReConfig : IMethodConfig<MoReConfig>, IMethodTrainerSchedule
{
    /// <summary>Foreground classes C = class tokens (VOC 20), from the dataset (0 in presets).</summary>
    public int NumClasses { get; init; }

    /// <summary>Leading register tokens, dropped from every output (reference 4).</summary>
    public int RegisterTokens { get; init; } = 4;

    /// <summary>ViT-B/16 with DINO-style position-embedding resizing, no drop path.</summary>
    public VitConfig Backbone { get; init; } = VitConfig.Base with { DropPathRate = 0.0, PositionEmbeddingResize = PositionEmbeddingResize.DinoScaleFactor };

    /// <summary>Block of the aux classifier (−3).</summary>
    public int AuxLayer { get; init; } = -3;

    /// <summary>LargeFOV width (512).</summary>
    public int DecoderWidth { get; init; } = 512;

    /// <summary>LargeFOV dilation (5).</summary>
    public int DecoderDilation { get; init; } = 5;

    /// <summary>Training crop side (448).</summary>
    public int CropSize { get; init; } = 448;

    /// <summary>GCR keeps int(ratio·C) neighbours per class (0.5).</summary>
    public double GcrTopKRatio { get; init; } = 0.5;

    /// <summary>GCR neighbour score (reference: the product of the two D-sums).</summary>
    public GcrNeighbourScore GcrScore { get; init; } = GcrNeighbourScore.Reference;

    /// <summary>Graph class aggregation on (the method); false leaves the class tokens as the encoder gives them (ablation "without GCR":
    /// losses and LAM then use the raw class tokens, the GCR parameters stay untrained).</summary>
    public bool UseGcr { get; init; } = true;

    /// <summary>Localization-informed regularisation on (CRE + URE, the method); false drops both relation losses (ablation "without LIR").</summary>
    public bool UseLir { get; init; } = true;

    /// <summary>Labels of the segmentation loss: PAR-refined CAM (official scripts, default) or PAR-refined LAM (the paper).</summary>
    public MoReSegmentationLabels SegmentationLabels { get; init; } = MoReSegmentationLabels.Cam;

    /// <summary>PTC and segmentation-label thresholds (0.7 / 0.25); evaluation background 0.5.</summary>
    public double HighThreshold { get; init; } = 0.7;

    /// <inheritdoc cref="HighThreshold"/>
    public double LowThreshold { get; init; } = 0.25;

    /// <summary>Evaluation background threshold (0.5).</summary>
    public double BackgroundThreshold { get; init; } = 0.5;

    /// <summary>CRE mask thresholds before <see cref="CamToMaskStep"/> (aux CAM, 0.5 / 0.25).</summary>
    public ThresholdPair EarlyConfidentThresholds { get; init; } = (0.5, 0.25);

    /// <summary>URE mask thresholds before <see cref="CamToMaskStep"/> (aux CAM, 0.7 / 0.25).</summary>
    public ThresholdPair EarlyUncertainThresholds { get; init; } = (0.7, 0.25);

    /// <summary>CRE and URE mask thresholds after <see cref="CamToMaskStep"/> (final CAM, 0.6 / 0.35).</summary>
    public ThresholdPair LateRelationThresholds { get; init; } = (0.6, 0.35);

    /// <summary>Up to this step (inclusive) the relation masks come from the aux CAM, afterwards from the final CAM (VOC 10 000).</summary>
    public long CamToMaskStep { get; init; } = 10_000;

    /// <summary>CRE temperature (VOC 0.5).</summary>
    public double CreTemperature { get; init; } = 0.5;

    /// <summary>Uncertain tokens per image in URE (8).</summary>
    public int UncertainTokens { get; init; } = 8;

    /// <summary>Which cell URE reads (reference: the shifted top-left cell).</summary>
    public UncertainTokenPosition UncertainTokenPosition { get; init; } = UncertainTokenPosition.Reference;

    /// <summary>In-training CAM scales (VOC 1.0, 0.5, 0.75, 1.5).</summary>
    public IReadOnlyList<double> CamScales { get; init; } = [1.0, 0.5, 0.75, 1.5];

    /// <summary>PAR settings (as ToCo).</summary>
    public ParConfig Par { get; init; } = ParConfig.Default;

    /// <summary>PAR runs at 1/ParDownScale of the crop (2).</summary>
    public int ParDownScale { get; init; } = 2;

    /// <summary>Classifier loss (1.0).</summary>
    public LossWeight Classification { get; init; } = new(1.0);

    /// <summary>Aux classifier loss (1.0).</summary>
    public LossWeight AuxClassification { get; init; } = new(1.0);

    /// <summary>Class-token uniqueness ("attri", 1.0).</summary>
    public LossWeight Uniqueness { get; init; } = new(1.0);

    /// <summary>Patch-token contrast (0.3).</summary>
    public LossWeight PatchContrast { get; init; } = new(0.3);

    /// <summary>Confident relation ("cle", 0.2).</summary>
    public LossWeight ConfidentRelation { get; init; } = new(0.2);

    /// <summary>Uncertain relation ("une", 0.1).</summary>
    public LossWeight UncertainRelation { get; init; } = new(0.1);

    /// <summary>Segmentation on PAR-refined labels of <see cref="SegmentationLabels"/> (0.12 after iteration 2000).</summary>
    public LossWeight Segmentation { get; init; } = new(0.12, 2001);

    /// <summary>MoRe's segmentation reduction: Σ CE / (count + 1e-6) per half (finite without background or foreground).</summary>
    public SegmentationLossReduction SegmentationReduction { get; init; } = SegmentationLossReduction.CountEpsilon;

    /// <summary>Backbone learning rate (6e-5); the heads and GCR get <see cref="HeadLearningRateScale"/>×.</summary>
    public double LearningRate { get; init; } = 6e-5;

    /// <summary>Head learning-rate multiplier (10).</summary>
    public double HeadLearningRateScale { get; init; } = 10.0;

    /// <summary>Warm-up steps (1500), starting from 1e-6 × the rate.</summary>
    public long WarmupSteps { get; init; } = 1500;

    /// <summary>Poly exponent counted from step 0 (0.9).</summary>
    public double PolyPower { get; init; } = 0.9;

    /// <summary>AdamW weight decay (0.01).</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Training steps (20 000).</summary>
    public long Steps { get; init; } = 20_000;

    /// <summary>Images per step (4).</summary>
    public int BatchSize { get; init; } = 4;

    /// <summary>What error messages call this configuration.</summary>
    public string Title => "MoRe";

    /// <summary><see cref="BackgroundThreshold"/>: MoRe's evaluation background (bkg 0.5, zwyang6/MoRe engine/validatation_engine.py,
    /// the ToCo base's value).</summary>
    public PresetThreshold PseudoLabelThreshold => new(BackgroundThreshold, "model.background_threshold, MoRe's evaluation background (official 0.5, zwyang6/MoRe, the ToCo base's --bkg_thre)");

    /// <summary>This configuration for <paramref name="numClasses"/> foreground classes (the dataset decides it).</summary>
    public MoReConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };

    /// <summary>This configuration with training crops of <paramref name="imageSize"/> (the backbone's position grid follows).</summary>
    public MoReConfig WithImageSize(int imageSize) => this with { CropSize = imageSize, Backbone = Backbone with { ImageSize = imageSize } };

    public static MoReConfig Paper => new();

    /// <summary>
    /// Two-core setting, as <see cref="ToCoConfig.Cpu"/>: a 4-block ViT (D 128, patch 8, 96 crops → 12×12 grid) from scratch,
    /// aux layer −2, 128-wide decoder, single-scale CAM, 1500 steps of 8, stage steps scaled like the step count
    /// (segmentation from 150, relation masks from the final CAM after 750).
    /// </summary>
    public static MoReConfig Cpu => new()
    {
        Backbone = VitConfig.Cpu128x4 with { PositionEmbeddingResize = PositionEmbeddingResize.DinoScaleFactor },
        AuxLayer = -2,
        DecoderWidth = 128,
        CropSize = 96,
        CamScales = [1.0],
        Segmentation = new LossWeight(0.12, 150),
        CamToMaskStep = 750,
        LearningRate = 2e-4,
        WarmupSteps = 100,
        Steps = 1500,
        BatchSize = 8,
    };

    /// <summary>The backbone actually built: R register + C class tokens.</summary>
    public VitConfig BackboneConfig => Backbone with { NumClassTokens = RegisterTokens + NumClasses };

    /// <summary>MoRe's label options with the ignore band (its cam_to_label order).</summary>
    public CamLabelOptions BandOptions(double high, double low) => new(BackgroundThreshold, high, low, IgnoreMid: true, CamLabelRule.MoRe);

    /// <summary>Trainer options: AdamW, warm-up from 1e-6 × rate, poly from step 0 (as ToCo's PolyWarmupAdamW).</summary>
    public TrainerOptions ToTrainerOptions(TrainerOptions? baseOptions = null)
    {
        this.EnsureValidBesidesClassCount();   // the schedule does not depend on K
        var o = baseOptions ?? new TrainerOptions();
        return o with
        {
            Steps = Steps, BatchSize = BatchSize, BaseLr = LearningRate, MinLr = 0.0, WarmupStartLr = LearningRate * 1e-6,
            WarmupSteps = Math.Min(WarmupSteps, Steps), WeightDecay = WeightDecay, Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8,
            Optimizer = OptimizerKind.AdamW, Schedule = ScheduleKind.PolyFromStart, PolyPower = PolyPower, NoWeightDecayNames = [], DecayAllParameters = true,
        };
    }

    /// <summary>Problems with this configuration, each naming the field and value; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = MethodConfigChecks.ClassCountErrors(NumClasses).ToList();
        if (RegisterTokens < 0) errors.Add($"RegisterTokens must be ≥ 0 (got {RegisterTokens})");
        errors.AddRange(MethodConfigChecks.BackboneErrors(BackboneConfig, NumClasses));
        if (AuxLayer < -Backbone.Depth || AuxLayer >= Backbone.Depth) errors.Add($"AuxLayer must name a block: -{Backbone.Depth}..{Backbone.Depth - 1} (got {AuxLayer})");
        if (DecoderWidth < 1) errors.Add($"DecoderWidth must be ≥ 1 (got {DecoderWidth})");
        if (DecoderDilation < 1) errors.Add($"DecoderDilation must be ≥ 1 (got {DecoderDilation})");
        if (!(GcrTopKRatio > 0 && GcrTopKRatio <= 1)) errors.Add($"GcrTopKRatio must be in (0, 1] (got {GcrTopKRatio})");
        else if (NumClasses > 0 && (int)(GcrTopKRatio * NumClasses) < 1) errors.Add($"GcrTopKRatio {GcrTopKRatio} keeps no neighbour of {NumClasses} class tokens (int(ratio·C) must be ≥ 1)");
        foreach (var (name, high, low) in new[] { ("", HighThreshold, LowThreshold), ("EarlyConfidentThresholds ", EarlyConfidentThresholds.High, EarlyConfidentThresholds.Low),
                     ("EarlyUncertainThresholds ", EarlyUncertainThresholds.High, EarlyUncertainThresholds.Low), ("LateRelationThresholds ", LateRelationThresholds.High, LateRelationThresholds.Low) })
            if (!(low < high)) errors.Add($"{name}thresholds out of order: low ({low}) must be below high ({high})");
        if (!(CreTemperature > 0)) errors.Add($"CreTemperature must be > 0 (got {CreTemperature})");
        if (UncertainTokens < 1) errors.Add($"UncertainTokens must be ≥ 1 (got {UncertainTokens})");
        if (CamScales.Count == 0 || CamScales.Any(s => !(s > 0) || double.IsInfinity(s))) errors.Add($"CamScales must be positive numbers (got [{string.Join(", ", CamScales)}])");
        errors.AddRange(Par.Validate().Select(e => "Par." + e));
        if (ParDownScale < 1) errors.Add($"ParDownScale must be ≥ 1 (got {ParDownScale})");
        if (!(LearningRate > 0)) errors.Add($"LearningRate must be > 0 (got {LearningRate})");
        if (!(HeadLearningRateScale > 0)) errors.Add($"HeadLearningRateScale must be > 0 (got {HeadLearningRateScale})");
        if (Steps < 1) errors.Add($"Steps must be ≥ 1 (got {Steps})");
        if (BatchSize < 1) errors.Add($"BatchSize must be ≥ 1 (got {BatchSize})");
        return errors;
    }

    /// <summary>Throws a <see cref="WeakSegException"/> listing every problem.</summary>
    public void EnsureValid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid MoRe configuration: " + string.Join("; ", errors));
    }
}
