using System.Text.Json.Serialization;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Segmentation;

/// <summary>Which network <c>seg-train</c> retrains on the pseudo labels.</summary>
public enum SegmentationModel
{
    /// <summary>WeakTr's online retraining: a ViT encoder and a Segmenter mask-transformer decoder (<see cref="SegmenterModel"/>).</summary>
    [JsonStringEnumMemberName("segmenter")]
    Segmenter,

    /// <summary>DeepLab-v1 LargeFOV on the ImageNet ResNet-18, dilated to output stride 8 (<see cref="DeepLabModel"/>).</summary>
    [JsonStringEnumMemberName("deeplab-largefov")]
    DeepLabLargeFov,

    /// <summary>DeepLab-v2 ASPP on the ImageNet ResNet-18, dilated to output stride 8 (<see cref="DeepLabModel"/>).</summary>
    [JsonStringEnumMemberName("deeplab-aspp")]
    DeepLabAspp,
}

/// <summary>Names of <see cref="SegmentationModel"/> on the command line and in JSON.</summary>
public static class SegmentationModels
{
    public static IReadOnlyList<string> Names => ["segmenter", "deeplab-largefov", "deeplab-aspp"];

    public static string Name(SegmentationModel model) => model switch
    {
        SegmentationModel.DeepLabLargeFov => "deeplab-largefov",
        SegmentationModel.DeepLabAspp => "deeplab-aspp",
        _ => "segmenter",
    };

    /// <exception cref="WeakSegException">an unknown name</exception>
    public static SegmentationModel Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "segmenter" => SegmentationModel.Segmenter,
        "deeplab-largefov" => SegmentationModel.DeepLabLargeFov,
        "deeplab-aspp" => SegmentationModel.DeepLabAspp,
        _ => throw new WeakSegException($"unknown segmentation model '{name}' (known: {string.Join(", ", Names)})"),
    };
}

/// <summary>
/// A retraining network: images [B, 3, H, W] (the data pipeline's ImageNet-normalised RGB) → per-pixel logits [B, K+1, H, W].
/// Built from a <see cref="SegmentationConfig"/> by <see cref="Create"/>; its encoder's parameters (keys starting
/// <see cref="EncoderPrefix"/>) train at <see cref="SegmentationConfig.EncoderLearningRateScale"/> × the rate.
/// </summary>
public abstract class SegmentationNetwork(string name) : Module<Tensor, Tensor>(name)
{
    public abstract SegmentationConfig Config { get; }

    /// <summary>Key prefix of the (pretrainable) encoder's parameters, e.g. <c>encoder.</c> or <c>backbone.</c>.</summary>
    public abstract string EncoderPrefix { get; }

    /// <summary>The encoder, into which <c>--init</c> loads timm/torchvision-keyed weights.</summary>
    public abstract Module Encoder { get; }

    /// <summary>C = K + 1 output classes.</summary>
    public int NumOutputClasses => Config.NumClasses + 1;

    /// <summary>The network <paramref name="config"/>'s <see cref="SegmentationConfig.Model"/> names.</summary>
    public static SegmentationNetwork Create(SegmentationConfig config) => config.Model switch
    {
        SegmentationModel.Segmenter => new SegmenterModel(config),
        _ => new DeepLabModel(config),
    };
}
