using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.AuxSegNet;

/// <summary>
/// AuxSegNet on a CNN trunk: <c>backbone</c> (the ImageNet ResNet-18 kept at stride 8 by dilation, <see cref="AuxSegNetConfig.TrunkLayout"/>; input = the
/// data pipeline's ImageNet-normalised RGB, converted to the CNN's BGR 0–255 input) → <c>heads</c> (<see cref="AuxSegNetHeads"/>).
/// As the reference freezes ResNet-38's first conv and every BatchNorm, the trunk's <c>conv1</c> and BatchNorm layers stay in eval
/// mode without gradients.
/// </summary>
public sealed class AuxSegNetNetwork : Module
{
    public readonly ResNet backbone;
    public readonly AuxSegNetHeads heads;

    public AuxSegNetNetwork(AuxSegNetConfig config) : base(nameof(AuxSegNetNetwork))
    {
        var errors = config.Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid AuxSegNet configuration: " + string.Join("; ", errors));
        Config = config;
        backbone = new ResNet(config.TrunkLayout);
        heads = new AuxSegNetHeads(config, config.TrunkLayout.OutputChannels);
        RegisterComponents();
        if (config.PretrainedTrunk) ImportReport = OnnxResNetImport.LoadPackaged(backbone);
        foreach (var (name, parameter) in backbone.named_parameters())
            if (IsFrozenTrunkParameter(name)) parameter.requires_grad = false;
        backbone.eval();
    }

    public AuxSegNetConfig Config { get; }

    /// <summary>What the pretrained import loaded (null when the trunk starts from random weights).</summary>
    public WeightImportReport? ImportReport { get; }

    /// <summary>The stem conv and every BatchNorm of the trunk (key names without the <c>backbone.</c> prefix).</summary>
    static bool IsFrozenTrunkParameter(string name) => name.StartsWith("conv1.", StringComparison.Ordinal) || name.StartsWith("bn1.", StringComparison.Ordinal)
        || name.Contains(".bn", StringComparison.Ordinal) || name.Contains(".downsample.1.", StringComparison.Ordinal);

    /// <summary>The reference's 10× parameters: those named seg, sal or fc8 (so not <c>cross_att</c> / <c>cross_unary</c>).</summary>
    public static bool IsHeadParameter(string name) => name.StartsWith("heads.", StringComparison.Ordinal)
        && (name.Contains("seg", StringComparison.Ordinal) || name.Contains("sal", StringComparison.Ordinal) || name.Contains("fc8", StringComparison.Ordinal));

    /// <summary>Sets train/eval mode; the trunk's BatchNorm stays in eval mode.</summary>
    public override void train(bool train = true)
    {
        base.train(train);
        backbone.eval();
    }

    /// <summary>Images [B, 3, H, W] (ImageNet-normalised RGB) → every head output on the stride-8 grid.</summary>
    public AuxSegNetOutput Forward(Tensor images)
    {
        if (backbone.training) backbone.eval();
        Tensor features;
        using (var scope = torch.NewDisposeScope())
            features = backbone.call(ResNetInput.FromImageNetNormalised(images)).MoveToOuterDisposeScope();
        using (features) return heads.Forward(features);
    }
}
