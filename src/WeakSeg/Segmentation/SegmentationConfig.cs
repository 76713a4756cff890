using System.Text.Json;
using System.Text.Json.Serialization;
using WeakSeg.Models.Vit;

namespace WeakSeg.Segmentation;

/// <summary>Loss of the retraining decoder.</summary>
public enum SegmentationDecoderLoss
{
    /// <summary>WeakTr's gradient-clipping decoder: per-pixel CE, pixels with a large "gradient" are dropped (paper §3.2, Eq. 9–17).</summary>
    GradientClipping,
    /// <summary>Plain per-pixel CE over every labelled pixel (the paper's "naive decoder" baseline, Table 5).</summary>
    Naive,
}

/// <summary>What the gradient-clipping decoder uses as the per-pixel "gradient" G.</summary>
public enum ClipSignal
{
    /// <summary>G = per-pixel cross-entropy −log p_y (the paper's Eq. 9 literally; τ = 1.2 is on this scale). Default.</summary>
    CrossEntropy,
    /// <summary>G = ‖softmax(z) − onehot(y)‖₂ = ‖∂CE/∂z‖₂, the true per-pixel logit-gradient norm (≤ √2, so τ must be rescaled).</summary>
    LogitGradientNorm,
}

/// <summary>How ignored pixels (label 255, CE 0) enter the gradient-clipping decoder's means (λ_global, λ_i and the loss).</summary>
public enum IgnoredPixelsInMeans
{
    /// <summary>Official: they count as zeros (every mean is over all B·H·W pixels).</summary>
    CountAsZero,
    /// <summary>Corrected: means are over the labelled pixels only.</summary>
    Exclude,
}

/// <summary>What the gradient-clipping decoder does when S does not divide the prediction's height or width.</summary>
public enum ClipPatchRemainder
{
    /// <summary>Official: an error (avg_pool2d with padding = H mod S yields a grid of the wrong size).</summary>
    Error,
    /// <summary>Corrected: patches start at the top-left and the last row/column of patches is smaller.</summary>
    SmallerEdgePatches,
}

/// <summary>
/// WeakTr online retraining: a Segmenter-style mask-transformer decoder on a plain ViT, trained on CAM seeds with the
/// gradient-clipping loss. Defaults are the paper's values (WeakTr appendix "WeakTr Online Retraining", Tables 5, 6, 10),
/// with Segmenter's defaults where WeakTr says nothing (marked "Segmenter default, unverified for WeakTr").
/// </summary>
public sealed record SegmentationConfig
{
    /// <summary>Foreground classes K; the decoder predicts K + 1 (background = 0). VOC: 20. From the dataset: presets leave it 0 and a
    /// run takes the K of the dataset it trains on (<see cref="For"/>, <see cref="SegmentationRun.Train"/>).</summary>
    public int NumClasses { get; init; }

    /// <summary>Where <see cref="NumClasses"/> came from, for the error of <see cref="For"/>: the configuration file that named
    /// <c>num_classes</c> (<see cref="FromJson"/>) or the dataset the configuration was bound to; null while it has none. Never written.</summary>
    [JsonIgnore]
    public string? ClassCountSource { get; init; }

    /// <summary>The configuration with <paramref name="steps"/> optimizer steps and a warm-up of at most a tenth of them
    /// (<see cref="Training.TrainerOptions.ShortenedWarmup"/>; <c>pipeline --seg-steps</c>).</summary>
    public SegmentationConfig WithSteps(long steps) => this with { Steps = steps, WarmupSteps = Training.TrainerOptions.ShortenedWarmup(WarmupSteps, steps) };

    /// <summary>The configuration with peak learning rate <paramref name="rate"/>; the floor of the poly decay is lowered to it when it was
    /// higher (<c>seg-train --lr</c>).</summary>
    public SegmentationConfig WithLearningRate(double rate) => this with { LearningRate = rate, MinLearningRate = Math.Min(MinLearningRate, rate) };

    /// <summary>The configuration bound to the dataset it trains on: K is the dataset's (the rule of <see cref="Data.DatasetClassCount.Bind"/>,
    /// shared with the CAM recipe).</summary>
    /// <exception cref="WeakSegException">the configuration holds another class count (a <c>--seg-config</c> file written for VOC):
    /// one line naming the file and both counts</exception>
    public SegmentationConfig For(Data.VocDataset dataset)
    {
        var source = Data.DatasetClassCount.Describe(dataset);
        int k = Data.DatasetClassCount.Bind(NumClasses, "num_classes", ClassCountSource, dataset.NumClasses, source);
        return this with { NumClasses = k, ClassCountSource = NumClasses != 0 ? ClassCountSource : source };
    }

    /// <summary>The network retrained: the Segmenter (default; not written to JSON, so existing configurations read and write as
    /// before) or DeepLab LargeFOV / ASPP on the ImageNet ResNet-18 (<see cref="DeepLab"/>; <see cref="Backbone"/>, the decoder and
    /// position-embedding fields then go unused).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public SegmentationModel Model { get; init; }

    /// <summary>DeepLab's settings; null = <see cref="DeepLabSettings.Paper"/>. Only read when <see cref="Model"/> is a DeepLab.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DeepLabSettings? DeepLab { get; init; }

    /// <summary>The DeepLab settings actually used.</summary>
    [JsonIgnore] public DeepLabSettings ResolvedDeepLab => DeepLab ?? DeepLabSettings.Paper;

    /// <summary>Encoder: DeiT-S (paper §4.1, "we also evaluate our gradient clipping decoder with DeiT-S"), position grid at the crop size.
    /// <see cref="VitConfig.ImageSize"/> is overridden by <see cref="CropSize"/> and <see cref="VitConfig.NumClassTokens"/> by 1.</summary>
    [JsonConverter(typeof(SegmentationBackboneJson))]
    public VitConfig Backbone { get; init; } = VitConfig.Small;

    /// <summary>Training crop side: 480 (Table 6 lists S = 480 as one patch per crop; Table 10 "480×480").</summary>
    public int CropSize { get; init; } = 480;

    /// <summary>Decoder transformer layers: 2 (Segmenter mask transformer, unverified for WeakTr).</summary>
    public int DecoderLayers { get; init; } = 2;

    /// <summary>Decoder width; 0 = the encoder width (Segmenter d_model = encoder dim).</summary>
    public int DecoderDim { get; init; }

    /// <summary>Decoder heads; 0 = width / 64 (Segmenter: d_model // 64).</summary>
    public int DecoderHeads { get; init; }

    /// <summary>Dropout in the decoder blocks: 0.1 (Segmenter default, unverified for WeakTr).</summary>
    public double DecoderDropout { get; init; } = 0.1;

    /// <summary>Stochastic depth of the encoder's last block: 0.1 (Segmenter default, unverified for WeakTr).</summary>
    public double EncoderDropPath { get; init; } = 0.1;

    public SegmentationDecoderLoss Loss { get; init; } = SegmentationDecoderLoss.GradientClipping;

    public ClipSignal ClipSignal { get; init; } = ClipSignal.CrossEntropy;

    /// <summary>Gradient-patch side S in pixels of the crop: 120 at crop 480 (best in Table 6; L = O/S = 4).</summary>
    public int ClipPatchSize { get; init; } = 120;

    /// <summary>Clipping start value τ: clip only when λ_global ≤ τ. 1.2 (best in Table 5).</summary>
    public double ClipStartValue { get; init; } = 1.2;

    /// <summary>Ignored pixels in the decoder loss's means (official: counted as zeros, for the naive decoder too).</summary>
    public IgnoredPixelsInMeans IgnoredPixels { get; init; } = IgnoredPixelsInMeans.CountAsZero;

    /// <summary>Crop sides not divisible by <see cref="ClipPatchSize"/> (official: an error).</summary>
    public ClipPatchRemainder ClipPatchRemainder { get; init; } = ClipPatchRemainder.Error;

    /// <summary>LayerNorm ε of the encoder and decoder: 1e-5 (official online retraining, nn.LayerNorm's default; the DeiT weights
    /// were trained with 1e-6, the corrected value).</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Position-embedding resize for other grids: bilinear to the target size (official Segmenter resize_pos_embed);
    /// <see cref="PositionEmbeddingResize.TimmSize"/> is the bicubic rule the DeiT weights come from.</summary>
    public PositionEmbeddingResize PositionEmbeddingResize { get; init; } = PositionEmbeddingResize.BilinearSize;

    /// <summary>Divide the decoder's patch-class cosines by √D as the paper's Eq. 8 writes (false = official: no factor; the LayerNorm
    /// over classes that follows removes a constant scale only up to its ε).</summary>
    public bool ScaleMasksBySqrtDim { get; init; }

    /// <summary>Steps at the start of training during which the clipping decoder never clips (plain CE on every labelled pixel), whatever
    /// λ_global is; after them the τ rule applies. 0 = the paper's rule alone (the τ gate is its only delay). Not in the paper: a CPU-preset
    /// safeguard for a randomly initialised encoder (see <see cref="Cpu"/>).</summary>
    public long ClipWarmupSteps { get; init; }

    /// <summary>Optimizer steps (batches). Unverified: WeakTr gives 9 h on one GPU, not the step count; 20 000 × 4 ≈ 7.6 epochs of train_aug.</summary>
    public long Steps { get; init; } = 20_000;

    /// <summary>Batch size 4 (appendix).</summary>
    public int BatchSize { get; init; } = 4;

    /// <summary>Optimizer: SGD with momentum (appendix). The CPU preset uses AdamW (see <see cref="Cpu"/>).</summary>
    public WeakSeg.Training.OptimizerKind Optimizer { get; init; } = WeakSeg.Training.OptimizerKind.Sgd;

    /// <summary>Linear learning-rate warm-up from 0 before the poly decay (capped at <see cref="Steps"/>): 0 (appendix: none mentioned).</summary>
    public long WarmupSteps { get; init; }

    /// <summary>SGD learning rate 1e-4 (appendix).</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>Poly decay ends at this rate: 1e-5 (Segmenter default min_lr, unverified for WeakTr).</summary>
    public double MinLearningRate { get; init; } = 1e-5;

    /// <summary>Poly exponent: 0.9 (Segmenter/mmseg default, unverified for WeakTr).</summary>
    public double PolyPower { get; init; } = 0.9;

    /// <summary>SGD momentum 0.9 (appendix).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Weight decay 0 (appendix).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Encoder learning rate = this × the scheduled rate: 0.1 (appendix, "hierarchical learning rate").</summary>
    public double EncoderLearningRateScale { get; init; } = 0.1;

    /// <summary>Training image scale range (RandomScaleCrop): 0.5–2.0 (Segmenter/mmseg VOC pipeline, unverified for WeakTr).</summary>
    public double MinRescale { get; init; } = 0.5;
    public double MaxRescale { get; init; } = 2.0;

    /// <summary>Inference scales (the paper uses "the multi-scale strategy" without listing them; these are the common VOC set, unverified).</summary>
    public double[] InferenceScales { get; init; } = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75];

    /// <summary>The largest inference scale accepted (a larger one would make a sliding-window pass of a VOC image impractical).</summary>
    public const double MaxInferenceScale = 8;

    /// <summary>Average with the horizontally flipped image at inference.</summary>
    public bool InferenceFlip { get; init; } = true;

    /// <summary>Sliding-window stride as a fraction of the crop: 2/3 (Segmenter window_stride 341 for window 512 ≈ 2/3).</summary>
    public double WindowStrideFraction { get; init; } = 2.0 / 3.0;

    [ResultNeutral] public long CheckpointEvery { get; init; } = 1000;
    [ResultNeutral] public long LogEvery { get; init; } = 20;

    /// <summary>Parameter names (last dotted segment) kept out of weight decay besides biases and 1-D tensors: the encoder's
    /// position embedding and class token, the decoder's class embeddings (timm/Segmenter no_weight_decay).</summary>
    public static readonly string[] NoWeightDecayNames = ["pos_embed", "cls_token", "cls_emb"];

    /// <summary>
    /// The shared <see cref="WeakSeg.Training.Trainer"/>'s options for this configuration: <see cref="Optimizer"/> (SGD with <see cref="Momentum"/>,
    /// or AdamW with β = (0.9, 0.999)), <see cref="WarmupSteps"/> of linear warm-up from 0, then poly decay from <see cref="LearningRate"/> to
    /// <see cref="MinLearningRate"/> with <see cref="PolyPower"/>, <see cref="WeightDecay"/>,
    /// no global gradient-norm clipping (the "gradient clipping" of WeakTr is the per-pixel loss mask, not norm clipping).
    /// </summary>
    public WeakSeg.Training.TrainerOptions ToTrainerOptions(long seed, string device = "cpu", int threads = 0) => new()
    {
        Steps = Steps, BatchSize = BatchSize,
        Optimizer = Optimizer, Momentum = Momentum,
        Schedule = WeakSeg.Training.ScheduleKind.Poly, PolyPower = PolyPower,
        BaseLr = LearningRate, MinLr = MinLearningRate, WarmupSteps = Math.Min(WarmupSteps, Steps), WarmupStartLr = 0,
        WeightDecay = WeightDecay, NoWeightDecayNames = NoWeightDecayNames, GradClipNorm = null,
        CheckpointEvery = CheckpointEvery, KeepLastCheckpoints = 3, LogEvery = LogEvery,
        Seed = seed, Device = device, Threads = threads,
    };

    /// <summary>Decoder width actually built.</summary>
    [JsonIgnore] public int ResolvedDecoderDim => DecoderDim > 0 ? DecoderDim : Backbone.EmbedDim;

    /// <summary>Decoder heads actually built.</summary>
    [JsonIgnore] public int ResolvedDecoderHeads => DecoderHeads > 0 ? DecoderHeads : Math.Max(1, ResolvedDecoderDim / 64);

    /// <summary>The encoder configuration actually built: one class token, position grid at the crop, <see cref="EncoderDropPath"/>.</summary>
    [JsonIgnore]
    public VitConfig EncoderConfig => Backbone with
    {
        ImageSize = CropSize, NumClassTokens = 1, DropPathRate = EncoderDropPath, LayerNormEps = LayerNormEps,
        PositionEmbeddingResize = PositionEmbeddingResize,
    };

    /// <summary>Sliding-window stride in pixels (≥ 1).</summary>
    [JsonIgnore] public int WindowStride => Math.Max(1, (int)Math.Round(CropSize * WindowStrideFraction));

    /// <summary>
    /// This configuration with the fields that cannot change a trained model set to fixed values: the result-neutral fields
    /// (<see cref="ResultNeutralAttribute"/>: the checkpoint and log cadence), and
    /// for the naive decoder every gradient-clipping field (S, τ, the signal, the clip warm-up). Two runs whose canonical forms are equal
    /// train the same weights, so a finished naive run stays valid when only τ changes.
    /// </summary>
    public SegmentationConfig CanonicalForTraining()
    {
        // every result-neutral field (ResultNeutralAttribute) at 1, the value pipeline stage records hold for them
        var info = IO.WeakSegJson.TypeInfo<SegmentationConfig>();
        var json = JsonSerializer.SerializeToNode(this, info)!.AsObject();
        foreach (var key in ResultNeutral.Keys(info)) json[key] = 1;
        var c = json.Deserialize(info)!;
        if (Loss == SegmentationDecoderLoss.Naive)
            c = c with { ClipPatchSize = 1, ClipStartValue = 1, ClipSignal = ClipSignal.CrossEntropy, ClipWarmupSteps = 0, ClipPatchRemainder = ClipPatchRemainder.Error };
        return c;
    }

    /// <summary>The paper's setup (VOC, DeiT-S, crop 480, S = 120, τ = 1.2).</summary>
    public static SegmentationConfig Paper => new();

    /// <summary>
    /// CPU preset for WeakSeg's 96×96 synthetic benchmark: a small ViT (<see cref="VitConfig.Cpu192x4"/>, vit-cpu-192x4: dim 192, depth 4, 3 heads,
    /// 12×12 tokens) whose tokens come from the packaged ImageNet ResNet-18 up to stride 8 (frozen, 1×1 projection), one decoder layer,
    /// crop 96, S scaled with the crop as in the paper (S = crop/4 = 24, L = 4). These are CPU-benchmark choices, not the paper's values.
    /// The stem is the measured choice: trained on ground truth (seed 0, 1500 steps) the segmenter reaches 81.1 % val mIoU on it against
    /// 32.3 % on a patch stem trained from scratch, and on WeakTr's pseudo labels 33.9 % against 13.4 %. The items below were measured
    /// on the patch stem, on `weakseg synth` defaults, ground-truth labels, seed 0, val mIoU % (train-split mIoU); the clipping decoder
    /// at τ = 0.3, whose gate stayed shut in these runs except for about 1 % of the late steps of the 1500-step run:
    /// <list type="bullet">
    /// <item>The encoder trains from scratch, so AdamW with 20 warm-up steps and poly decay replaces the paper's SGD 1e-4 (meant for a
    ///   pretrained encoder).</item>
    /// <item>Learning rate 3e-4: at 500 steps of batch 8, lr 1e-3 collapses to all-background (7.9), 3e-4 gives 23.5 (32.0) and 1e-4
    ///   22.1 (29.8); 3e-4 for 1500 steps gives 32.6 (46.5). Batch 32 at lr 1e-3 for 500 steps (16 000 images, a similar CPU time)
    ///   gives 31.4 (49.4).</item>
    /// <item>τ = 0.3 instead of 1.2. The background is ~87 % of the pixels and is learned within a few steps, so λ_global is already
    ///   ≈ 1.1 at step 10, before any object is learned: with τ = 1.2 the gate is open from the start (96 % of the steps), the mask keeps
    ///   the low-CE background pixels and drops the high-CE object pixels, and the model collapses to all-background (val 7.9 on the
    ///   WeakTr pseudo labels, where the naive decoder reaches 23.7). On VOC the initial CE is ≈ ln 21 ≈ 3, so the paper's τ opens the
    ///   gate only after the model has learned something. With τ = 0.3 the gate stayed shut for all 1500 steps on those pseudo labels,
    ///   so the cpu preset's clipping decoder equals the naive decoder there; the README's results list τ = 0.6 as well.</item>
    /// </list>
    /// </summary>
    public static SegmentationConfig Cpu => new()
    {
        Backbone = VitConfig.Cpu192x4 with { Stem = VitStem.ResNet18Stride8 },
        CropSize = 96,
        DecoderLayers = 1,
        DecoderDropout = 0.0,
        EncoderDropPath = 0.0,
        ClipPatchSize = 24,
        ClipStartValue = 0.3,
        Steps = 1500,
        BatchSize = 8,
        Optimizer = WeakSeg.Training.OptimizerKind.AdamW,
        WarmupSteps = 20,
        LearningRate = 3e-4,
        MinLearningRate = 1e-5,
        WeightDecay = 0.01,
        EncoderLearningRateScale = 1.0,
        MinRescale = 0.75,
        MaxRescale = 1.5,
        InferenceScales = [1.0],
        CheckpointEvery = 250,
        LogEvery = 10,
    };

    /// <summary>The error of a configuration whose class count no dataset has given yet (a preset).</summary>
    public const string UnboundClassCount = "NumClasses is not set: the class count comes from the dataset the segmenter trains on";

    /// <summary>Problems, each naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (NumClasses == 0) e.Add(UnboundClassCount);
        else if (NumClasses < 1 || NumClasses > 254) e.Add($"NumClasses must be in 1..254 (got {NumClasses})");
        if (CropSize < 1) e.Add($"CropSize must be ≥ 1 (got {CropSize})");
        else if (Backbone.PatchSize >= 1 && CropSize % Backbone.PatchSize != 0) e.Add($"CropSize ({CropSize}) must be a multiple of the patch size ({Backbone.PatchSize})");
        e.AddRange(EncoderConfig.Validate().Select(x => "Backbone." + x));
        if (DecoderLayers < 0) e.Add($"DecoderLayers must be ≥ 0 (got {DecoderLayers})");
        if (DecoderDim < 0) e.Add($"DecoderDim must be ≥ 0 (got {DecoderDim})");
        if (DecoderHeads < 0) e.Add($"DecoderHeads must be ≥ 0 (got {DecoderHeads})");
        else if (ResolvedDecoderDim % ResolvedDecoderHeads != 0) e.Add($"decoder width {ResolvedDecoderDim} must be divisible by DecoderHeads {ResolvedDecoderHeads}");
        if (DecoderDropout is < 0 or >= 1) e.Add($"DecoderDropout must be in [0, 1) (got {DecoderDropout})");
        if (EncoderDropPath is < 0 or >= 1) e.Add($"EncoderDropPath must be in [0, 1) (got {EncoderDropPath})");
        if (ClipPatchSize < 1) e.Add($"ClipPatchSize must be ≥ 1 (got {ClipPatchSize})");
        if (!(ClipStartValue > 0)) e.Add($"ClipStartValue must be > 0 (got {ClipStartValue})");
        if (!Enum.IsDefined(IgnoredPixels)) e.Add($"IgnoredPixels must be CountAsZero or Exclude (got {IgnoredPixels})");
        if (!Enum.IsDefined(ClipPatchRemainder)) e.Add($"ClipPatchRemainder must be Error or SmallerEdgePatches (got {ClipPatchRemainder})");
        else if (Loss == SegmentationDecoderLoss.GradientClipping && ClipPatchRemainder == ClipPatchRemainder.Error && CropSize >= 1
                 && ClipPatchSize >= 1 && CropSize % ClipPatchSize != 0)
            e.Add($"CropSize ({CropSize}) must be a multiple of ClipPatchSize ({ClipPatchSize}) (the official clipping fails otherwise; set ClipPatchRemainder = SmallerEdgePatches)");
        if (!(LayerNormEps > 0)) e.Add($"LayerNormEps must be > 0 (got {LayerNormEps})");
        if (!Enum.IsDefined(PositionEmbeddingResize)) e.Add($"PositionEmbeddingResize must be DinoScaleFactor, TimmSize or BilinearSize (got {PositionEmbeddingResize})");
        if (ClipWarmupSteps < 0) e.Add($"ClipWarmupSteps must be ≥ 0 (got {ClipWarmupSteps})");
        if (Steps < 1) e.Add($"Steps must be ≥ 1 (got {Steps})");
        if (WarmupSteps < 0) e.Add($"WarmupSteps must be ≥ 0 (got {WarmupSteps})");
        if (!Enum.IsDefined(Optimizer)) e.Add($"Optimizer must be Sgd or AdamW (got {Optimizer})");
        if (BatchSize < 1) e.Add($"BatchSize must be ≥ 1 (got {BatchSize})");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) e.Add($"LearningRate must be a positive number (got {LearningRate})");
        if (!(MinLearningRate >= 0) || MinLearningRate > LearningRate) e.Add($"MinLearningRate must be in [0, LearningRate] (got {MinLearningRate})");
        if (!(PolyPower > 0)) e.Add($"PolyPower must be > 0 (got {PolyPower})");
        if (Momentum is < 0 or >= 1) e.Add($"Momentum must be in [0, 1) (got {Momentum})");
        if (!(WeightDecay >= 0)) e.Add($"WeightDecay must be ≥ 0 (got {WeightDecay})");
        if (!(EncoderLearningRateScale >= 0)) e.Add($"EncoderLearningRateScale must be ≥ 0 (got {EncoderLearningRateScale})");
        if (!(MinRescale > 0 && MinRescale <= MaxRescale)) e.Add($"MinRescale/MaxRescale must satisfy 0 < min ≤ max (got {MinRescale}, {MaxRescale})");
        if (InferenceScales.Length == 0 || InferenceScales.Any(s => !(s > 0) || s > MaxInferenceScale)) e.Add($"InferenceScales must be a non-empty list of numbers in (0, {MaxInferenceScale}]");
        if (!(WindowStrideFraction > 0 && WindowStrideFraction <= 1)) e.Add($"WindowStrideFraction must be in (0, 1] (got {WindowStrideFraction})");
        if (CheckpointEvery < 1) e.Add($"CheckpointEvery must be ≥ 1 (got {CheckpointEvery})");
        if (LogEvery < 1) e.Add($"LogEvery must be ≥ 1 (got {LogEvery})");
        if (!Enum.IsDefined(Model)) e.Add($"Model must be one of {string.Join(", ", SegmentationModels.Names)} (got {Model})");
        else if (Model != SegmentationModel.Segmenter) e.AddRange(ResolvedDeepLab.Validate().Select(x => "DeepLab." + x));
        return e;
    }

    public void EnsureValid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid segmentation configuration: " + string.Join("; ", errors));
    }

    public string ToJson() => JsonSerializer.Serialize(this, IO.WeakSegJson.TypeInfo<SegmentationConfig>());

    /// <summary>Parses a configuration written by <see cref="ToJson"/>; errors name <paramref name="sourcePath"/>.</summary>
    public static SegmentationConfig FromJson(string json, string sourcePath = "<config>")
    {
        IO.JsonFiles.Parse(json, sourcePath);                                   // a duplicate key is an error, not the last value winning
        try
        {
            var config = JsonSerializer.Deserialize(json, IO.WeakSegJson.TypeInfo<SegmentationConfig>())
                         ?? throw WeakSegException.ForFile(sourcePath, "empty segmentation configuration");
            return config.NumClasses != 0 ? config with { ClassCountSource = sourcePath } : config;
        }
        catch (JsonException e) { throw WeakSegException.ForFile(sourcePath, "bad segmentation configuration JSON: " + e.Message); }
    }
}

/// <summary>The DeepLab head and trunk of <see cref="SegmentationConfig"/> when its <see cref="SegmentationConfig.Model"/> is a DeepLab.</summary>
public sealed record DeepLabSettings
{
    /// <summary>LargeFOV's fc6/fc7 width: 1024 (DeepLab-v1 LargeFOV).</summary>
    public int HeadChannels { get; init; } = 1024;

    /// <summary>LargeFOV's fc6 dilation: 12 (DeepLab-v1 LargeFOV, on a 41×41 grid of its 321 crops).</summary>
    public int LargeFovRate { get; init; } = 12;

    /// <summary>ASPP branch dilations: 6, 12, 18, 24 (DeepLab-v2 ASPP-L).</summary>
    public int[] AsppRates { get; init; } = [6, 12, 18, 24];

    /// <summary>Start the trunk from the packaged ImageNet ResNet-18 (false: random weights).</summary>
    public bool Pretrained { get; init; } = true;

    /// <summary>ONNX file of the trunk's weights; null = the packaged ResNet-18.</summary>
    public string? WeightsOnnx { get; init; }

    /// <summary>The papers' heads.</summary>
    public static DeepLabSettings Paper => new();

    /// <summary>
    /// The built-in 96×96 benchmark (crop 96 → a 12×12 grid at stride 8, about a third of DeepLab's 41×41): dilations scaled by 1/3
    /// (LargeFOV 4; ASPP 2, 4, 6, 8) so the fields of view cover a similar share of the grid, and a 256-wide LargeFOV head.
    /// CPU-benchmark choices, not the papers' values.
    /// </summary>
    public static DeepLabSettings Cpu => new() { HeadChannels = 256, LargeFovRate = 4, AsppRates = [2, 4, 6, 8] };

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (HeadChannels < 1) e.Add($"HeadChannels must be ≥ 1 (got {HeadChannels})");
        if (LargeFovRate < 1) e.Add($"LargeFovRate must be ≥ 1 (got {LargeFovRate})");
        if (AsppRates is null || AsppRates.Length == 0 || AsppRates.Any(r => r < 1)) e.Add("AsppRates must be a non-empty list of dilations ≥ 1");
        if (WeightsOnnx is { Length: 0 }) e.Add("WeightsOnnx must be a file path or null (got an empty string)");
        return e;
    }
}

