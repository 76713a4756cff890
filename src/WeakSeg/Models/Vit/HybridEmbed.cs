using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Models.Vit;

/// <summary>
/// Hybrid patch embedding (timm's <c>HybridEmbed</c>): a CNN trunk (<c>backbone</c> = the ImageNet ResNet-18's stem and layers
/// up to stride 8 or 16) then a 1×1 convolution <c>proj</c> to the token width, flattened to tokens. [B, 3, H, W] → [B, (H/s)(W/s), D].
/// <para>Input: the data pipeline's tensors (RGB, ImageNet mean/std); <see cref="ResNetInput.FromImageNetNormalised"/> turns them
/// into the CNN's own input (BGR, 0–255, minus its channel means) inside the module, so the input convention belongs to the backbone.</para>
/// <para>The CNN's BatchNorm layers always use their stored (ImageNet) statistics. Frozen (<see cref="VitConfig.FreezeStem"/>): no
/// gradients, the CNN stays bit-identical; otherwise its weights train, at <see cref="VitConfig.StemLearningRateScale"/> × the rate.</para>
/// </summary>
public sealed class HybridEmbed : Module<Tensor, Tensor>
{
    /// <summary>Key prefix of the CNN's parameters inside a <see cref="VisionTransformer"/>.</summary>
    public const string BackbonePrefix = "patch_embed.backbone.";

    readonly ResNet.ResNet backbone;
    readonly Conv2d proj;

    public HybridEmbed(VitConfig config) : base(nameof(HybridEmbed))
    {
        int stages = VitStems.ResNetStages(config.Stem);
        if (stages == 0) throw new WeakSegException($"HybridEmbed needs a ResNet stem (got {VitStems.Name(config.Stem)})");
        Stride = VitStems.Stride(config.Stem)!.Value;
        Frozen = config.FreezeStem;
        backbone = new ResNet.ResNet(ResNetConfig.PackagedResNet18 with { Stages = stages });
        proj = Conv2d(ResNetConfig.StageChannels(stages), config.EmbedDim, 1);
        RegisterComponents();
        if (config.PretrainedStem) ImportReport = OnnxResNetImport.LoadFile(backbone, config.StemOnnx ?? PackagedResNet18.ModelPath);
        if (Frozen) foreach (var p in backbone.parameters()) p.requires_grad = false;
        backbone.eval();
    }

    /// <summary>Pixels per token.</summary>
    public int Stride { get; }

    /// <summary>True when the CNN gets no gradients.</summary>
    public bool Frozen { get; }

    /// <summary>What the pretrained import loaded (null when the stem starts from random weights).</summary>
    public WeightImportReport? ImportReport { get; }

    /// <summary>The CNN trunk.</summary>
    public ResNet.ResNet Backbone => backbone;

    /// <summary>Learning-rate multiplier for a parameter of a model using <paramref name="config"/>: the CNN's parameters (keys
    /// containing <see cref="BackbonePrefix"/>) get <see cref="VitConfig.StemLearningRateScale"/>, every other parameter 1.</summary>
    public static double LearningRateScale(VitConfig config, string parameterName) =>
        config.Stem != VitStem.Patch && parameterName.Contains(BackbonePrefix, StringComparison.Ordinal) ? config.StemLearningRateScale : 1.0;

    /// <summary>Sets train/eval mode; the CNN stays in eval mode (its BatchNorm statistics are the pretrained ones).</summary>
    public override void train(bool train = true)
    {
        base.train(train);
        backbone.eval();
    }

    public override Tensor forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        if (backbone.training) backbone.eval();   // whatever mode the parent set, the BN statistics stay the stored ones
        long gridH = images.shape[2] / Stride, gridW = images.shape[3] / Stride;
        Tensor features;
        using (Frozen ? torch.no_grad() : null)
        {
            var input = ResNetInput.FromImageNetNormalised(images);
            features = backbone.call(input);
        }
        // Sizes that are not multiples of the stride: the CNN rounds up, the token grid down.
        if (features.shape[2] != gridH || features.shape[3] != gridW) features = features.narrow(2, 0, gridH).narrow(3, 0, gridW);
        return proj.call(features).flatten(2).transpose(1, 2).MoveToOuterDisposeScope();   // [B, h·w, D]
    }
}
