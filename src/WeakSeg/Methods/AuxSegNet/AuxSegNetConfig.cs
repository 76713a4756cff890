using WeakSeg.Models.ResNet;
using WeakSeg.Models.Vit;
using WeakSeg.Training;

namespace WeakSeg.Methods.AuxSegNet;

/// <summary>The CNN trunk whose output-stride-8 features feed AuxSegNet's heads.</summary>
public enum AuxSegNetTrunk
{
    /// <summary>The packaged ImageNet ResNet-18 (2-2-2-3 blocks) kept at stride 8 by dilation: layers 1–4 with layer3/layer4 dilated
    /// (2, 4), 512 channels, or layers 1–3 with layer3 dilated, 256 channels (<see cref="AuxSegNetConfig.TrunkStages"/>).</summary>
    ResNet18,

    /// <summary>The paper's ResNet-38 (wide ResNet, 4096-channel conv6). Its weights are the user's; WeakSeg does not build this trunk,
    /// so a configuration naming it is refused with a message saying what to give instead.</summary>
    ResNet38,
}

/// <summary>The optimiser of the training rounds.</summary>
public enum AuxSegNetOptimizer
{
    /// <summary>What the authors intend: SGD with momentum 0.9 and weight decay <see cref="AuxSegNetConfig.WeightDecay"/>. Default.</summary>
    Intended,

    /// <summary>The reference code's optimiser (PSA's torchutils, xulianuwa/AuxSegNet train_AuxAff.py): <c>SGD(params, lr, weight_decay)</c>
    /// passes the weight decay as the third positional argument, which is the momentum, so it runs SGD with momentum = the weight-decay
    /// value (1e-5) and no weight decay; 0.9 is only the poly power.</summary>
    Reference,
}

/// <summary>
/// AuxSegNet+ (Xu et al., TNNLS 2025; the journal version of AuxSegNet, ICCV 2021; official ICCV code xulianuwa/AuxSegNet@9f40a5d,
/// network/AuxSegNet.py, train_AuxAff.py, tool/imutils.py): a classification head (CAM), a segmentation and a saliency branch on one
/// stride-8 CNN trunk; per-task pairwise affinities, the AuxSegNet+ unary (query-independent) affinity, cross-task affinity fusion,
/// feature enhancement and refined predictions of both tasks; five losses; pseudo labels fused from CAM and saliency with two
/// thresholds and an ignore band. <see cref="Paper"/> holds the official VOC values; <see cref="Cpu"/> the two-core benchmark setting.
/// </summary>
public sealed record AuxSegNetConfig : IMethodConfig<AuxSegNetConfig>, IMethodTrainerSchedule
{
    /// <summary>Foreground classes C (VOC 20), from the dataset (0 in presets); the classifier predicts C, the segmentation branch C + 1 with background first.</summary>
    public int NumClasses { get; init; }

    /// <summary>The trunk. Paper: ResNet-38 (weights supplied by the user); WeakSeg builds <see cref="AuxSegNetTrunk.ResNet18"/>.</summary>
    public AuxSegNetTrunk Trunk { get; init; } = AuxSegNetTrunk.ResNet38;

    /// <summary>ResNet-18 stages kept: 4 (all, 512 channels) or 3 (stem + layers 1–3, 256 channels; about a quarter of the
    /// compute at stride 8, as WeakSeg's ResNet CAM baseline).</summary>
    public int TrunkStages { get; init; } = 4;

    /// <summary>Start the ResNet-18 trunk from the packaged ImageNet weights (true) or random weights (false, tests).</summary>
    public bool PretrainedTrunk { get; init; } = true;

    /// <summary>Width of the task branches and their affinity projections (official 128; a small trunk may use 64).</summary>
    public int BranchWidth { get; init; } = 128;

    /// <summary>Training crop side (official 321 → a 41×41 grid, N = 1681).</summary>
    public int CropSize { get; init; } = 321;

    /// <summary>Add the AuxSegNet+ unary (query-independent, global-context) affinity to both tasks (see <see cref="AuxSegNetAffinity.Unary"/>).
    /// false = the ICCV AuxSegNet.</summary>
    public bool UnaryAffinity { get; init; } = true;

    /// <summary>Train the saliency branch (its two losses). false = the "segmentation only" ablation (the branch still runs for the
    /// cross-task affinity when that is on).</summary>
    public bool SaliencyAuxiliary { get; init; } = true;

    /// <summary>Refine both tasks' predictions with the fused cross-task affinity. false = the ablation without it: refined = init.</summary>
    public bool CrossTaskAffinity { get; init; } = true;

    /// <summary>Kernel of the first cross-task fusion conv over the stacked N×N affinities. Official 3: it mixes the weights of
    /// neighbouring entries (i±1, j±1) of the flattened matrices; 1 = the corrected per-entry weighting.</summary>
    public int CrossTaskKernel { get; init; } = 3;

    /// <summary>Divide θᵀφ by √d before the row softmax (a correction; the official NLBlock does not scale).</summary>
    public bool ScaledAffinity { get; init; }

    /// <summary>CAM score above which a pixel counts as object (official 0.2, strict, float32).</summary>
    public double CamThreshold { get; init; } = 0.2;

    /// <summary>Saliency above which a pixel counts as object (official 0.06, strict, float32).</summary>
    public double SaliencyThreshold { get; init; } = 0.06;

    /// <summary>Smooth the updated saliency with the reference's one-iteration dense CRF (<c>crf_for_sal</c>) in the label update after a
    /// round (official: on). false = the update without it.</summary>
    public bool SaliencyCrf { get; init; } = true;

    /// <summary>Saliency level at which the saliency target is binarised for the BCE losses (official 0.5).</summary>
    public double SaliencyTargetThreshold { get; init; } = 0.5;

    /// <summary>First (0-based) step whose batch trains the segmentation and saliency losses. Official 0: its labels come from a
    /// pretrained classifier before training. WeakSeg's first round makes them online from the model's own CAM, so the cpu preset
    /// lets the classifier learn first.</summary>
    public long LabelStartStep { get; init; }

    public AuxSegNetOptimizer Optimizer { get; init; } = AuxSegNetOptimizer.Intended;

    /// <summary>Trunk learning rate (official 7e-4).</summary>
    public double LearningRate { get; init; } = 7e-4;

    /// <summary>Rate multiplier of the heads (official 10: parameters named seg/sal/fc8).</summary>
    public double HeadLearningRateScale { get; init; } = 10.0;

    /// <summary>Weight decay (official 1e-5; the reference optimiser uses it as the momentum instead).</summary>
    public double WeightDecay { get; init; } = 1e-5;

    /// <summary>Poly power of the learning-rate decay (official 0.9).</summary>
    public double PolyPower { get; init; } = 0.9;

    /// <summary>Steps of one round (official (10582 // 4) · 15 = 39 675).</summary>
    public long Steps { get; init; } = 39_675;

    /// <summary>Images per step (official 4).</summary>
    public int BatchSize { get; init; } = 4;

    public string Title => "AuxSegNet";

    /// <summary>The CAM threshold of the fusion rule, used as the background threshold when the pipeline makes labels from maps alone.</summary>
    public PresetThreshold PseudoLabelThreshold => new(CamThreshold,
        "AuxSegNet's fusion_cam CAM threshold 0.2 (xulianuwa/AuxSegNet tool/imutils.py; there saliency > 0.06 must agree)");

    /// <summary>The official VOC setup (ResNet-38 trunk, whose weights the user supplies).</summary>
    public static AuxSegNetConfig Paper => new();

    /// <summary>
    /// Two-core setting: the ImageNet ResNet-18's layers 1–3 (layer3 dilated, stride 8, 256 channels), 64-wide branches, 96-pixel crops (12×12 grid, N = 144),
    /// 600 steps of 8 images, online labels from step 150.
    /// </summary>
    public static AuxSegNetConfig Cpu => new()
    {
        Trunk = AuxSegNetTrunk.ResNet18,
        TrunkStages = 3,
        BranchWidth = 64,
        CropSize = 96,
        LearningRate = 1e-3,
        LabelStartStep = 150,
        Steps = 600,
        BatchSize = 8,
    };

    /// <summary>The ResNet-18 trunk's layout: <see cref="TrunkStages"/> stages, the strides of layer3 (and layer4) replaced by dilation → stride 8.</summary>
    public ResNetConfig TrunkLayout => ResNetConfig.PackagedResNet18 with { Stages = TrunkStages, DilatedStages = TrunkStages == 4 ? [3, 4] : [3] };

    /// <summary>The network's input grid as the generic code reads it: stride 8 cells (the "patch") on <see cref="CropSize"/> crops.
    /// Only <see cref="VitConfig.ImageSize"/> and <see cref="VitConfig.PatchSize"/> mean anything for this CNN.</summary>
    public VitConfig BackboneConfig => VitConfig.Cpu128x4 with { ImageSize = CropSize, PatchSize = 8 };

    public AuxSegNetConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };

    public AuxSegNetConfig WithImageSize(int imageSize) => this with { CropSize = imageSize };

    /// <summary>
    /// Trainer options: poly decay (1 − t/T)^<see cref="PolyPower"/> from step 0, no warm-up, the 10× head rate through
    /// <see cref="AuxSegNetMethod.LearningRateScale"/>; SGD with momentum 0.9 and weight decay (<see cref="AuxSegNetOptimizer.Intended"/>)
    /// or the reference's momentum-as-weight-decay quirk (<see cref="AuxSegNetOptimizer.Reference"/>). Other fields from <paramref name="baseOptions"/>.
    /// </summary>
    public TrainerOptions ToTrainerOptions(TrainerOptions? baseOptions = null)
    {
        this.EnsureValidBesidesClassCount();   // the schedule does not depend on K
        var o = baseOptions ?? new TrainerOptions();
        bool reference = Optimizer == AuxSegNetOptimizer.Reference;
        return o with
        {
            Steps = Steps, BatchSize = BatchSize, BaseLr = LearningRate, MinLr = 0.0, WarmupStartLr = 0.0, WarmupSteps = 0,
            Optimizer = OptimizerKind.Sgd, Momentum = reference ? WeightDecay : 0.9, WeightDecay = reference ? 0.0 : WeightDecay,
            Schedule = ScheduleKind.PolyFromStart, PolyPower = PolyPower, NoWeightDecayNames = [], DecayAllParameters = true,
        };
    }

    public IReadOnlyList<string> Validate()
    {
        var errors = MethodConfigChecks.ClassCountErrors(NumClasses).ToList();
        if (Trunk == AuxSegNetTrunk.ResNet38)
            errors.Add("Trunk ResNet38 (the paper's) needs the user's ResNet-38 weights and is not built by WeakSeg; use Trunk ResNet18 " +
                "(the packaged ImageNet ResNet-18 dilated to stride 8, as the cpu preset does)");
        else if (!Enum.IsDefined(Trunk)) errors.Add($"Trunk must be ResNet18 or ResNet38 (got {Trunk})");
        if (TrunkStages is not (3 or 4)) errors.Add($"TrunkStages must be 3 or 4 (got {TrunkStages})");
        if (BranchWidth < 1) errors.Add($"BranchWidth must be ≥ 1 (got {BranchWidth})");
        if (CropSize < 8) errors.Add($"CropSize must be ≥ 8 (got {CropSize})");
        if (CrossTaskKernel is not (1 or 3)) errors.Add($"CrossTaskKernel must be 3 (official) or 1 (got {CrossTaskKernel})");
        foreach (var (name, v) in new[] { ("CamThreshold", CamThreshold), ("SaliencyThreshold", SaliencyThreshold), ("SaliencyTargetThreshold", SaliencyTargetThreshold) })
            if (!(v >= 0 && v <= 1)) errors.Add($"{name} must be in [0, 1] (got {v})");
        if (LabelStartStep < 0) errors.Add($"LabelStartStep must be ≥ 0 (got {LabelStartStep})");
        if (!Enum.IsDefined(Optimizer)) errors.Add($"Optimizer must be Intended or Reference (got {Optimizer})");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) errors.Add($"LearningRate must be a positive number (got {LearningRate})");
        if (!(HeadLearningRateScale > 0) || double.IsInfinity(HeadLearningRateScale)) errors.Add($"HeadLearningRateScale must be a positive number (got {HeadLearningRateScale})");
        if (!(WeightDecay >= 0 && WeightDecay < 1)) errors.Add($"WeightDecay must be in [0, 1) (got {WeightDecay})");
        if (!(PolyPower > 0) || double.IsInfinity(PolyPower)) errors.Add($"PolyPower must be a positive number (got {PolyPower})");
        if (Steps < 1) errors.Add($"Steps must be ≥ 1 (got {Steps})");
        if (BatchSize < 1) errors.Add($"BatchSize must be ≥ 1 (got {BatchSize})");
        return errors;
    }
}
