using WeakSeg.Models.ResNet;
using WeakSeg.Models.Vit;

namespace WeakSeg.Methods.CamResNet;

/// <summary>
/// The classic CAM baseline (Zhou et al. 2016) on the ImageNet ResNet-18 of the package <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>:
/// stem + layers 1–3 with layer3's stride replaced by dilation 2 (output stride 8, 256 channels), a 1×1 classifier without bias, global
/// average pooling, multi-label soft margin (<see cref="ResNetCam"/>). BatchNorm keeps the ImageNet statistics. No ViT: the maps
/// live on the stride-8 grid (<see cref="MapStride"/>).
/// </summary>
public sealed record CamResNetConfig : IMethodConfig<CamResNetConfig>, ITrainFlopCount
{
    /// <summary>The ResNet CAM setup of IRN's <c>train_cam.py</c> (Ahn et al. 2019; unverified here): crop 512, the pretrained
    /// trunk at a tenth of the classifier's learning rate.</summary>
    public static CamResNetConfig Paper => new();

    /// <summary>The built-in 96×96 benchmark: crop 96 → 12×12 maps, the same grid as the cpu ViT presets (patch 8).</summary>
    public static CamResNetConfig Cpu => new() { ImageSize = 96 };

    /// <summary>Foreground classes (VOC: 20), from the dataset (0 in presets).</summary>
    public int NumClasses { get; init; }

    /// <summary>Training crop side in pixels (a multiple of the output stride 8).</summary>
    public int ImageSize { get; init; } = 512;

    /// <summary>Start the trunk from the packaged ImageNet weights (true) or from random weights (false: the from-scratch comparison).</summary>
    public bool Pretrained { get; init; } = true;

    /// <summary>ONNX file of the trunk's weights; null = the packaged ResNet-18.</summary>
    public string? WeightsOnnx { get; init; }

    /// <summary>Multiplier of the scheduled learning rate for the trunk; the new classifier gets 1 (IRN: backbone lr, classifier
    /// 10 × lr). 0 keeps the trunk's weights fixed.</summary>
    public double TrunkLearningRateScale { get; init; } = 0.1;

    /// <summary>No ViT backbone.</summary>
    public VitConfig? BackboneConfig => null;

    /// <summary>Pixels per map cell: the trunk's output stride, 8.</summary>
    public int MapStride => Network.Trunk.OutputStride;

    /// <summary>The network this configuration builds.</summary>
    public ResNetCamConfig Network => new()
    {
        NumClasses = NumClasses, Pretrained = Pretrained, WeightsOnnx = WeightsOnnx, TrunkLearningRateScale = TrunkLearningRateScale,
    };

    string IMethodConfig.Title => "CAM (ResNet-18)";

    /// <summary>A baseline without official code here: <see cref="PresetThreshold.Common"/>.</summary>
    public PresetThreshold PseudoLabelThreshold => PresetThreshold.Common;

    public CamResNetConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };

    public CamResNetConfig WithImageSize(int imageSize) => this with { ImageSize = imageSize };

    public IReadOnlyList<string> Validate()
    {
        var errors = this.CommonErrors();
        errors.AddRange(Network.Validate().Where(e => !e.StartsWith(nameof(NumClasses), StringComparison.Ordinal)));
        int stride = Network.Trunk.OutputStride;
        if (ImageSize < stride || ImageSize % stride != 0) errors.Add($"ImageSize must be a positive multiple of the output stride {stride} (got {ImageSize})");
        if (WeightsOnnx is { Length: 0 }) errors.Add("WeightsOnnx must be a file path or null (got an empty string)");
        return errors;
    }

    /// <summary>Training FLOPs per image: the trunk's forward (× 3 when it trains, × 1 when its rate is 0 and it gets no update — its
    /// gradients are still computed, so this is the lower figure) plus 3 × the 1×1 classifier on the stride-8 grid.</summary>
    public double TrainFlopsPerImage()
    {
        var trunk = Network.Trunk;
        double cells = Math.Pow(ImageSize / (double)trunk.OutputStride, 2);
        double classifier = 2.0 * cells * trunk.OutputChannels * NumClasses;
        return 3 * (ResNetFlops.Forward(trunk, ImageSize, ImageSize) + classifier);
    }
}
