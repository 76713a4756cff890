using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models.Weights;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Models.ResNet;

/// <summary>The classic CAM network on the ImageNet ResNet-18 (Zhou et al. 2016, as in PSA/IRN's ResNet baselines).</summary>
public sealed record ResNetCamConfig
{
    /// <summary>Foreground classes K (from the dataset; the method configuration passes its own).</summary>
    public int NumClasses { get; init; }

    /// <summary>Start the trunk from the packaged ImageNet weights (true) or from random weights (false).</summary>
    public bool Pretrained { get; init; } = true;

    /// <summary>ONNX file of the trunk's weights; null = the packaged ResNet-18.</summary>
    public string? WeightsOnnx { get; init; }

    /// <summary>Multiplier of the scheduled learning rate for the trunk (the classifier gets 1). 0 keeps the trunk's weights fixed.</summary>
    public double TrunkLearningRateScale { get; init; } = 1.0;

    /// <summary>The trunk: stem + layers 1–3, layer3's stride replaced by dilation 2 → output stride 8, 256 channels.</summary>
    public ResNetConfig Trunk => ResNetConfig.PackagedResNet18 with { Stages = 3, DilatedStages = [3] };

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (NumClasses < 1) e.Add($"NumClasses must be ≥ 1 (got {NumClasses})");
        if (!(TrunkLearningRateScale >= 0) || double.IsInfinity(TrunkLearningRateScale)) e.Add($"TrunkLearningRateScale must be a finite number ≥ 0 (got {TrunkLearningRateScale})");
        return e;
    }
}

/// <summary>Class scores and class activation maps of a <see cref="ResNetCam"/>.</summary>
/// <param name="Logits">[B, K] image-level class scores (global average of <paramref name="Cams"/>)</param>
/// <param name="Cams">[B, K, H/8, W/8] the 1×1 classifier applied at every position, before any ReLU</param>
public sealed record ResNetCamOutput(Tensor Logits, Tensor Cams) : IDisposable
{
    public void Dispose()
    {
        Logits.Dispose();
        Cams.Dispose();
    }
}

/// <summary>
/// CAM on the ImageNet ResNet-18: <c>backbone</c> (stem + layers 1–3, dilated layer3, stride 8) → <c>classifier</c> (1×1 conv,
/// no bias) → global average pooling → multi-label soft margin. Maps: ReLU of the per-position scores. Input: the data pipeline's
/// ImageNet-normalised RGB, converted inside to the CNN's BGR 0–255 input. BatchNorm keeps the pretrained statistics.
/// </summary>
public sealed class ResNetCam : Module<Tensor, ResNetCamOutput>
{
    readonly ResNet backbone;
    readonly Conv2d classifier;

    public ResNetCam(ResNetCamConfig config) : base(nameof(ResNetCam))
    {
        var errors = config.Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid ResNet CAM configuration: " + string.Join("; ", errors));
        Config = config;
        backbone = new ResNet(config.Trunk);
        classifier = Conv2d(config.Trunk.OutputChannels, config.NumClasses, 1, bias: false);
        RegisterComponents();
        using (torch.no_grad()) init.kaiming_normal_(classifier.weight);
        if (config.Pretrained) ImportReport = OnnxResNetImport.LoadFile(backbone, config.WeightsOnnx ?? PackagedResNet18.ModelPath);
        backbone.eval();
    }

    public ResNetCamConfig Config { get; }

    /// <summary>The trunk (keys <c>backbone.*</c>).</summary>
    public ResNet Backbone => backbone;

    /// <summary>What the pretrained import loaded (null when the trunk starts from random weights).</summary>
    public WeightImportReport? ImportReport { get; }

    /// <summary>Pixels per map cell (8).</summary>
    public int OutputStride => Config.Trunk.OutputStride;

    /// <summary>Learning-rate multiplier of a parameter: the trunk's (keys starting <c>backbone.</c>) get <see cref="ResNetCamConfig.TrunkLearningRateScale"/>.</summary>
    public double LearningRateScale(string parameterName) =>
        parameterName.StartsWith("backbone.", StringComparison.Ordinal) ? Config.TrunkLearningRateScale : 1.0;

    /// <summary>Sets train/eval mode; the trunk's BatchNorm stays in eval mode.</summary>
    public override void train(bool train = true)
    {
        base.train(train);
        backbone.eval();
    }

    public override ResNetCamOutput forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        if (backbone.training) backbone.eval();
        var features = backbone.call(ResNetInput.FromImageNetNormalised(images));   // [B, 256, H/8, W/8]
        var cams = classifier.call(features);                                        // [B, K, H/8, W/8]
        var logits = cams.mean([2, 3]);                                              // = classifier(GAP(features)): both are linear
        return new ResNetCamOutput(logits.MoveToOuterDisposeScope(), cams.MoveToOuterDisposeScope());
    }

    /// <summary>Class activation maps ReLU(cams), [B, K, H/8, W/8].</summary>
    public Tensor Maps(Tensor images)
    {
        using var output = forward(images);
        return functional.relu(output.Cams);
    }

    /// <summary>Multi-label soft margin on the image-level scores. labels [B, K] in {0, 1} → scalar.</summary>
    public static Tensor Loss(ResNetCamOutput output, Tensor labels) =>
        functional.multilabel_soft_margin_loss(output.Logits, labels.to_type(output.Logits.dtype));
}
