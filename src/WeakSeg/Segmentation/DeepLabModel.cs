using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Segmentation;

/// <summary>
/// DeepLab on the ImageNet ResNet-18 of the package <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>: <c>backbone</c> = all four stages
/// with layer3 and layer4 dilated (2 and 4) instead of strided (torchvision's <c>replace_stride_with_dilation=[False, True, True]</c>), so
/// the 512-channel features are at output stride 8; then <c>classifier</c>, one of
/// <list type="bullet">
/// <item>LargeFOV (DeepLab-v1, Chen et al. 2015): <c>fc6</c> 3×3 conv at dilation r → W channels, ReLU, dropout 0.5, <c>fc7</c> 1×1 → W,
///   ReLU, dropout 0.5, <c>fc8</c> 1×1 → K + 1 (r = <see cref="DeepLabSettings.LargeFovRate"/>, W = <see cref="DeepLabSettings.HeadChannels"/>);</item>
/// <item>ASPP (DeepLab-v2, Chen et al. 2017, as deeplab-pytorch's <c>_ASPP</c>): one 3×3 conv with bias to K + 1 per rate
///   (<c>c0</c>, <c>c1</c>, …, dilation = padding = rate, <see cref="DeepLabSettings.AsppRates"/>), weights N(0, 0.01²), biases 0, outputs summed.</item>
/// </list>
/// The logits at stride 8 are upsampled bilinearly (align_corners false) to the input size. Input: the data pipeline's ImageNet-normalised
/// RGB, turned into the CNN's BGR 0–255 input inside (<see cref="ResNetInput.FromImageNetNormalised"/>). BatchNorm keeps the ImageNet
/// statistics (eval mode whatever the parent's mode), as DeepLab's small-batch training does.
/// </summary>
public sealed class DeepLabModel : SegmentationNetwork
{
    public const string BackbonePrefix = "backbone.";

    readonly ResNet backbone;
    readonly Module<Tensor, Tensor> classifier;
    readonly SegmentationConfig config;

    public DeepLabModel(SegmentationConfig config) : base(nameof(DeepLabModel))
    {
        config.EnsureValid();
        if (config.Model == SegmentationModel.Segmenter) throw new WeakSegException("DeepLabModel needs Model = deeplab-largefov or deeplab-aspp");
        this.config = config;
        backbone = new ResNet(Trunk);
        int classes = config.NumClasses + 1;
        var settings = config.ResolvedDeepLab;
        classifier = config.Model == SegmentationModel.DeepLabLargeFov
            ? new LargeFovHead(Trunk.OutputChannels, settings.HeadChannels, classes, settings.LargeFovRate)
            : new AsppHead(Trunk.OutputChannels, classes, settings.AsppRates);
        RegisterComponents();
        if (settings.Pretrained) ImportReport = OnnxResNetImport.LoadFile(backbone, settings.WeightsOnnx ?? PackagedResNet18.ModelPath);
        backbone.eval();
    }

    /// <summary>The trunk: the packaged ResNet-18 layout with layers 3 and 4 dilated (output stride 8, 512 channels).</summary>
    public static ResNetConfig Trunk => ResNetConfig.PackagedResNet18 with { DilatedStages = [3, 4] };

    public override SegmentationConfig Config => config;
    public override string EncoderPrefix => BackbonePrefix;
    public override Module Encoder => backbone;

    /// <summary>The ResNet trunk.</summary>
    public ResNet Backbone => backbone;

    /// <summary>What the pretrained import loaded (null when the trunk starts from random weights).</summary>
    public WeightImportReport? ImportReport { get; }

    /// <summary>Sets train/eval mode; the trunk's BatchNorm stays in eval mode.</summary>
    public override void train(bool train = true)
    {
        base.train(train);
        backbone.eval();
    }

    /// <summary>Logits at the trunk's stride 8: [B, 3, H, W] → [B, K+1, ⌈H/8⌉, ⌈W/8⌉].</summary>
    public Tensor StrideEightLogits(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        if (backbone.training) backbone.eval();
        var features = backbone.call(ResNetInput.FromImageNetNormalised(images));      // [B, 512, H/8, W/8]
        return classifier.call(features).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3 || images.shape[2] < 1 || images.shape[3] < 1)
            throw new WeakSegException($"DeepLab input must be [B, 3, H, W]; got [{string.Join(", ", images.shape)}]");
        using var scope = torch.NewDisposeScope();
        var logits = StrideEightLogits(images);
        return functional.interpolate(logits, size: [images.shape[2], images.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false)
            .MoveToOuterDisposeScope();
    }

    /// <summary>DeepLab-v1 LargeFOV head: fc6 (3×3, dilation r) → ReLU → dropout → fc7 (1×1) → ReLU → dropout → fc8 (1×1).</summary>
    sealed class LargeFovHead : Module<Tensor, Tensor>
    {
        readonly Conv2d fc6;
        readonly Conv2d fc7;
        readonly Conv2d fc8;
        readonly Dropout drop6;
        readonly Dropout drop7;

        public LargeFovHead(int inChannels, int width, int classes, int rate) : base(nameof(LargeFovHead))
        {
            fc6 = Conv2d(inChannels, width, 3, padding: rate, dilation: rate);
            fc7 = Conv2d(width, width, 1);
            fc8 = Conv2d(width, classes, 1);
            drop6 = Dropout(0.5);
            drop7 = Dropout(0.5);
            RegisterComponents();
            using var _ = torch.no_grad();
            init.normal_(fc8.weight, 0, 0.01);   // DeepLab-v1: the new classifier N(0, 0.01²), bias 0
            init.zeros_(fc8.bias!);
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = torch.NewDisposeScope();
            var y = drop6.call(functional.relu(fc6.call(x)));
            y = drop7.call(functional.relu(fc7.call(y)));
            return fc8.call(y).MoveToOuterDisposeScope();
        }
    }

    /// <summary>DeepLab-v2 ASPP: the sum of one dilated 3×3 conv to the classes per rate (keys c0, c1, …).</summary>
    sealed class AsppHead : Module<Tensor, Tensor>
    {
        readonly List<Conv2d> branches = [];

        public AsppHead(int inChannels, int classes, IReadOnlyList<int> rates) : base(nameof(AsppHead))
        {
            using (torch.no_grad())
                foreach (var rate in rates)
                {
                    var conv = Conv2d(inChannels, classes, 3, padding: rate, dilation: rate);
                    init.normal_(conv.weight, 0, 0.01);
                    init.zeros_(conv.bias!);
                    branches.Add(conv);
                }
            for (int i = 0; i < branches.Count; i++) register_module("c" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), branches[i]);
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = torch.NewDisposeScope();
            Tensor sum = branches[0].call(x);
            for (int i = 1; i < branches.Count; i++) sum = sum.add(branches[i].call(x));
            return sum.MoveToOuterDisposeScope();
        }
    }
}
